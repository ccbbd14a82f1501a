package demo

import (
	"testing"
	"time"
)

func TestRecentlySettled(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) string { return now.Add(-d).Format(time.RFC3339) }
	for _, c := range []struct {
		name string
		ps   []Payment
		want bool
	}{
		{"none", nil, false},
		{"still pending", []Payment{{Status: "pending", UpdatedAt: at(time.Second)}}, false},
		{"executed just now", []Payment{{Status: "pending", UpdatedAt: at(0)}, {Status: "executed", UpdatedAt: at(10 * time.Second)}}, true},
		{"rejected just now", []Payment{{Status: "rejected", UpdatedAt: at(time.Minute)}}, true},
		{"executed long ago", []Payment{{Status: "executed", UpdatedAt: at(10 * time.Minute)}}, false},
		{"bad time", []Payment{{Status: "executed", UpdatedAt: "yesterday"}}, false},
	} {
		if got := recentlySettled(c.ps, now, settledFresh); got != c.want {
			t.Errorf("%s: recentlySettled = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestShownMoneyAndTimes(t *testing.T) {
	for in, want := range map[[2]string]string{
		{"12.50", "EUR"}:       "€ 12.50",
		{"-3.00", "EUR"}:       "−€ 3.00",
		{"7.00", "USD"}:        "USD 7.00",
		{"-0.01", ""}:          "−0.01",
		{"1000.00", "GBP"}:     "GBP 1,000.00",
		{"-1234567.89", "EUR"}: "−€ 1,234,567.89",
		{"999.99", "EUR"}:      "€ 999.99",
	} {
		if got := fmtMoney(in[0], in[1]); got != want {
			t.Errorf("fmtMoney(%q, %q) = %q, want %q", in[0], in[1], got, want)
		}
	}
	if got := fmtClock("2026-11-22T13:04:05+01:00"); got != "12:04:05" {
		t.Errorf("fmtClock = %q, want the UTC time 12:04:05", got)
	}
	if got := fmtClock("not a time"); got != "not a time" {
		t.Errorf("fmtClock of a bad time = %q", got)
	}
}

func TestAmountsAsPeopleTypeThem(t *testing.T) {
	for in, want := range map[string]string{
		"12.50":    "12.50",
		"12,50":    "12.50",
		"12,5":     "12.5",
		" 7 ":      "7",
		"1,250.00": "1250.00",
		"1.250,00": "1250.00",
		"1 250,00": "1250.00",
		"1,250":    "1250",
		"12.505":   "12.505", // the API refuses it, with its own message
		"abc":      "abc",
	} {
		if got := normalAmount(in); got != want {
			t.Errorf("normalAmount(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFilterDatesFlagsFromAfterTo(t *testing.T) {
	if _, _, msg := filterDates("2026-11-22", "2026-11-01"); msg == "" {
		t.Error("a start date after the end date passes")
	}
	if _, _, msg := filterDates("2026-11-01", "2026-11-01"); msg != "" {
		t.Errorf("one day: %q", msg)
	}
}
