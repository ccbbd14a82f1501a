package demo

import (
	"strings"
	"testing"
	"time"
)

func TestChartIsDeterministicAndExact(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	c := Chart{ID: "acc-1", Title: "Balance of Main <account>", Currency: "EUR", Points: []Point{
		{At: t0.Add(48 * time.Hour), Balance: -5000}, // out of order on purpose
		{At: t0, Balance: 10000},
		{At: t0.Add(96 * time.Hour), Balance: 2550},
	}}
	got := string(c.SVG())
	if again := string(c.SVG()); again != got {
		t.Fatal("two renders of the same chart differ")
	}
	// Full geometry: plot x 104..628 (524 wide), y 12..172 (160 high);
	// hi 100.00, lo -50.00. The path starts at the oldest point (x 104,
	// y 12), steps at day 2 to -50.00 (bottom) and at day 4 to 25.50.
	for _, want := range []string{
		`d="M104.0 12.0 H366.0 V172.0 H628.0 V91.4 H628.0"`,
		`<title id="chart-acc-1-t">Balance of Main &lt;account&gt;</title>`,
		`class="chart-zero"`, // the balance crosses zero
		`>€ 100.00<`, `>−€ 50.00<`, `>1 Nov 2026<`, `>5 Nov 2026<`,
		"lowest −€ 50.00, highest € 100.00",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("chart lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "NaN") || strings.Contains(got, "Inf") {
		t.Errorf("chart has NaN or Inf:\n%s", got)
	}
}

func TestChartEdgeCases(t *testing.T) {
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	empty := string(Chart{ID: "e", Title: "Empty"}.SVG())
	if !strings.Contains(empty, "No transactions yet") || strings.Contains(empty, "chart-line") {
		t.Errorf("empty chart: %s", empty)
	}
	// One point and a flat series: no division by zero, a line mid-height.
	one := string(Chart{ID: "o", Points: []Point{{At: at, Balance: 700}}}.SVG())
	if !strings.Contains(one, `d="M104.0 92.0 H628.0"`) || strings.Contains(one, "NaN") {
		t.Errorf("one-point chart: %s", one)
	}
	// Huge balances do not overflow.
	big := string(Chart{ID: "b", Compact: true, Points: []Point{{At: at, Balance: -1 << 62}, {At: at.Add(time.Hour), Balance: 1 << 62}}}.SVG())
	if !strings.Contains(big, `d="M0.0 78.0 H300.0 V4.0 H300.0"`) || strings.Contains(big, "chart-label") {
		t.Errorf("compact chart of huge balances: %s", big)
	}
}

func TestBalanceSeries(t *testing.T) {
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	txs := []Transaction{ // newest first, as the API lists them
		{BookedAt: "2026-11-21T10:00:00Z", Amount: "-12.50", BalanceAfter: &Money{Amount: "100.00", Currency: "EUR"}},
		{BookedAt: "2026-11-20T10:00:00Z", Amount: "50.00"}, // no balance_after: derived
		{BookedAt: "2026-11-19T10:00:00Z", Amount: "-0.01", BalanceAfter: &Money{Amount: "62.50", Currency: "EUR"}},
	}
	pts, err := BalanceSeries(txs, Money{Amount: "100.00", Currency: "EUR"}, now)
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{6250, 11250, 10000, 10000}
	if len(pts) != len(want) {
		t.Fatalf("points %+v", pts)
	}
	for i, p := range pts {
		if p.Balance != want[i] {
			t.Errorf("point %d = %d, want %d (%+v)", i, p.Balance, want[i], pts)
		}
	}
	if !pts[3].At.Equal(now) || !pts[0].At.Before(pts[1].At) {
		t.Errorf("points not oldest first ending now: %+v", pts)
	}
	if _, err := BalanceSeries([]Transaction{{BookedAt: "yesterday", Amount: "1"}}, Money{Amount: "1.00"}, now); err == nil {
		t.Error("a bad booking time was accepted")
	}
}
