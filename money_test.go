package tpp_test

import (
	"math"
	"strings"
	"testing"

	"github.com/bunqtpp/tpp"
)

func TestParseMinor(t *testing.T) {
	t.Parallel()
	valid := []struct {
		in   string
		want int64
	}{
		{"12", 1200},
		{"12.5", 1250},
		{"12.50", 1250},
		{"0.01", 1},
		{"0.1", 10},
		{"1", 100},
		{"999999.99", 99999999},
		{"1000000", tpp.MaxPaymentMinor},
		{"1000000.00", tpp.MaxPaymentMinor},
	}
	for _, c := range valid {
		got, err := tpp.ParseMinor(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseMinor(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	invalid := []struct {
		in, msg string
	}{
		{"", "amount is required"},
		{"0", "greater than zero"},
		{"0.00", "greater than zero"},
		{"000", "leading zeros"},
		{"00012.30", "leading zeros"},
		{"1000000.01", "above the limit of 1000000.00"},
		{"999999999999", "above the limit"},         // 12 digits: parsed, then over the limit
		{"9999999999999", "not a positive decimal"}, // 13 digits
		{"99999999999999999999", "not a positive decimal"},
		{"-1", "not a positive decimal"},
		{"-0.50", "not a positive decimal"},
		{"+1", "not a positive decimal"},
		{"1e3", "not a positive decimal"},
		{"1.5e2", "one or two decimals"},
		{"1E2", "not a positive decimal"},
		{" 1", "not a positive decimal"},
		{"1 ", "not a positive decimal"},
		{"1 000", "not a positive decimal"},
		{"1,00", "not a positive decimal"},
		{"1,000.00", "not a positive decimal"},
		{"1_000", "not a positive decimal"},
		{"1.234", "one or two decimals"},
		{"1.", "one or two decimals"},
		{"5.", "one or two decimals"},
		{".5", "not a positive decimal"},
		{".", "not a positive decimal"},
		{"1.2.3", "one or two decimals"},
		{"1.-5", "one or two decimals"},
		{"0x10", "not a positive decimal"},
		{"NaN", "not a positive decimal"},
		{"Inf", "not a positive decimal"},
		{"abc", "not a positive decimal"},
		{"١٢", "not a positive decimal"}, // Arabic-Indic digits
		{"12\x00", "not a positive decimal"},
	}
	for _, c := range invalid {
		got, err := tpp.ParseMinor(c.in)
		if err == nil {
			t.Errorf("ParseMinor(%q) = %d, want an error", c.in, got)
			continue
		}
		if code := tpp.ErrorCode(err); code != tpp.EInvalidAmount {
			t.Errorf("ParseMinor(%q): code %q, want %q", c.in, code, tpp.EInvalidAmount)
		}
		if !strings.Contains(tpp.ErrorMessage(err), c.msg) {
			t.Errorf("ParseMinor(%q): message %q lacks %q", c.in, tpp.ErrorMessage(err), c.msg)
		}
	}
}

func TestParseSignedMinor(t *testing.T) {
	t.Parallel()
	valid := []struct {
		in   string
		want int64
	}{
		{"-12.50", -1250},
		{"-12.5", -1250},
		{"12.50", 1250},
		{"0.10", 10},
		{"0", 0},
		{"0.00", 0},
		{"-0", 0},
		{"-0.00", 0},
		{"-0.01", -1},
		{"500", 50000},
		{"999999999999999", 99999999999999900}, // 15 digits
		{"-999999999999999.99", -99999999999999999}, // the most negative it reads
	}
	for _, c := range valid {
		got, err := tpp.ParseSignedMinor(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseSignedMinor(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{
		"", "-", "+1", "--1", "- 1", " -1", "-1 ", "1e3", "-1e3", ".5", "-.5", "5.", "-5.", "1.234",
		"1,50", "1.5.0", "abc", "1000000000000000", "-1000000000000000", "0x1", "NaN", "١",
	} {
		got, err := tpp.ParseSignedMinor(in)
		if err == nil {
			t.Errorf("ParseSignedMinor(%q) = %d, want an error", in, got)
			continue
		}
		if code := tpp.ErrorCode(err); code != tpp.EInvalidAmount {
			t.Errorf("ParseSignedMinor(%q): code %q", in, code)
		}
	}
}

func TestFormatMinor(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   int64
		want string
	}{
		{0, "0.00"},
		{1, "0.01"},
		{9, "0.09"},
		{10, "0.10"},
		{99, "0.99"},
		{100, "1.00"},
		{1250, "12.50"},
		{1205, "12.05"},
		{-1, "-0.01"},
		{-10, "-0.10"},
		{-1250, "-12.50"},
		{tpp.MaxPaymentMinor, "1000000.00"},
		{math.MaxInt64, "92233720368547758.07"},
		{-math.MaxInt64, "-92233720368547758.07"},
	}
	for _, c := range cases {
		if got := tpp.FormatMinor(c.in); got != c.want {
			t.Errorf("FormatMinor(%d) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestFormatMinorMinInt64 guards the overflow when negating math.MinInt64.
func TestFormatMinorMinInt64(t *testing.T) {
	t.Parallel()
	if got := tpp.FormatMinor(math.MinInt64); got != "-92233720368547758.08" {
		t.Fatalf("FormatMinor(math.MinInt64) = %q, want %q", got, "-92233720368547758.08")
	}
}

func TestMinorRoundTrip(t *testing.T) {
	t.Parallel()
	for _, v := range []int64{0, 1, -1, 5, 10, 99, 100, 101, 1234567, -1234567, 99999999999999999, -99999999999999999} {
		got, err := tpp.ParseSignedMinor(tpp.FormatMinor(v))
		if err != nil || got != v {
			t.Errorf("ParseSignedMinor(FormatMinor(%d)) = %d, %v", v, got, err)
		}
	}
	for v := int64(1); v <= tpp.MaxPaymentMinor; v = v*3 + 1 {
		got, err := tpp.ParseMinor(tpp.FormatMinor(v))
		if err != nil || got != v {
			t.Errorf("ParseMinor(FormatMinor(%d)) = %d, %v", v, got, err)
		}
	}
}

func FuzzMinorRoundTrip(f *testing.F) {
	for _, v := range []int64{0, 1, -1, 1250, -99999999999999999} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v int64) {
		// ParseSignedMinor reads at most 15 whole digits.
		if v <= -1e17 || v >= 1e17 {
			return
		}
		s := tpp.FormatMinor(v)
		got, err := tpp.ParseSignedMinor(s)
		if err != nil || got != v {
			t.Fatalf("ParseSignedMinor(FormatMinor(%d) = %q) = %d, %v", v, s, got, err)
		}
		if v > 0 && v <= tpp.MaxPaymentMinor {
			if got, err := tpp.ParseMinor(s); err != nil || got != v {
				t.Fatalf("ParseMinor(%q) = %d, %v", s, got, err)
			}
		}
	})
}

func TestParseMoney(t *testing.T) {
	t.Parallel()
	if got, err := tpp.ParseMoney(tpp.Money{Amount: "12.50", Currency: "EUR"}); err != nil || got != 1250 {
		t.Errorf("ParseMoney(12.50 EUR) = %d, %v", got, err)
	}
	if got, err := tpp.ParseMoney(tpp.Money{Amount: "1", Currency: "JPY"}); err != nil || got != 100 {
		t.Errorf("ParseMoney(1 JPY) = %d, %v", got, err)
	}
	for _, c := range []struct {
		m    tpp.Money
		code string
	}{
		{tpp.Money{Amount: "12.50", Currency: "eur"}, tpp.EInvalidCurrency},
		{tpp.Money{Amount: "12.50", Currency: ""}, tpp.EInvalidCurrency},
		{tpp.Money{Amount: "12.50", Currency: "EURO"}, tpp.EInvalidCurrency},
		{tpp.Money{Amount: "12.50", Currency: "XXX"}, tpp.EInvalidCurrency},
		{tpp.Money{Amount: "12.50", Currency: " EUR"}, tpp.EInvalidCurrency},
		{tpp.Money{Amount: "abc", Currency: "eur"}, tpp.EInvalidCurrency}, // currency is checked first
		{tpp.Money{Amount: "abc", Currency: "EUR"}, tpp.EInvalidAmount},
		{tpp.Money{Amount: "", Currency: "EUR"}, tpp.EInvalidAmount},
		{tpp.Money{Amount: "-1", Currency: "EUR"}, tpp.EInvalidAmount},
		{tpp.Money{Amount: "0", Currency: "EUR"}, tpp.EInvalidAmount},
		{tpp.Money{Amount: "2000000", Currency: "EUR"}, tpp.EInvalidAmount},
	} {
		if _, err := tpp.ParseMoney(c.m); tpp.ErrorCode(err) != c.code {
			t.Errorf("ParseMoney(%+v): err %v, want code %s", c.m, err, c.code)
		}
	}
}

func TestValidCurrency(t *testing.T) {
	t.Parallel()
	for code, want := range map[string]bool{
		"EUR": true, "USD": true, "GBP": true, "CHF": true, "JPY": true, "SLE": true,
		"eur": false, "Eur": false, "EURO": false, "EU": false, "": false, "XXX": false,
		"HRK": false, // replaced by EUR in 2023
		"DEM": false,
	} {
		if got := tpp.ValidCurrency(code); got != want {
			t.Errorf("ValidCurrency(%q) = %v, want %v", code, got, want)
		}
	}
}
