package tpp

import (
	"strconv"
	"strings"
)

// Money is an amount as the fintech API speaks it: a decimal string with at
// most two decimals and an ISO 4217 currency. It is never a float.
type Money struct {
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
}

// MaxPaymentMinor is the largest amount, in cents, that the API accepts for a
// payment or a funds check (EUR 1,000,000.00). Anything above it is surely a
// mistake in the caller, and bunq would refuse it anyway.
const MaxPaymentMinor = 100_000_000

// ParseMinor parses a positive decimal string with at most two decimals
// ("12", "12.5", "12.50") into minor units. It accepts no sign, exponent,
// thousands separator or surrounding space: a payment amount has one spelling.
func ParseMinor(s string) (int64, error) {
	if s == "" {
		return 0, Errorf(EInvalidAmount, "amount is required")
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || len(whole) > 12 || !allDigits(whole) {
		return 0, Errorf(EInvalidAmount, "amount %q is not a positive decimal like \"12.50\"", s)
	}
	if len(whole) > 1 && whole[0] == '0' {
		return 0, Errorf(EInvalidAmount, "amount %q has leading zeros; write it like \"12.50\"", s)
	}
	if hasDot && (len(frac) == 0 || len(frac) > 2 || !allDigits(frac)) {
		return 0, Errorf(EInvalidAmount, "amount %q must have one or two decimals after the point", s)
	}
	for len(frac) < 2 {
		frac += "0"
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, Errorf(EInvalidAmount, "amount %q is out of range", s)
	}
	f, _ := strconv.ParseInt(frac, 10, 64)
	minor := w*100 + f
	if minor <= 0 {
		return 0, Errorf(EInvalidAmount, "amount must be greater than zero")
	}
	if minor > MaxPaymentMinor {
		return 0, Errorf(EInvalidAmount, "amount %s is above the limit of %s", s, FormatMinor(MaxPaymentMinor))
	}
	return minor, nil
}

// ParseSignedMinor parses a bank amount such as "-12.50" or "0.10" into minor
// units. Unlike ParseMinor it allows a sign and zero, as the bank reports
// debits as negative amounts.
func ParseSignedMinor(s string) (int64, error) {
	neg := strings.HasPrefix(s, "-")
	whole, frac, hasDot := strings.Cut(strings.TrimPrefix(s, "-"), ".")
	if whole == "" || !allDigits(whole) || len(whole) > 15 || (hasDot && (len(frac) == 0 || len(frac) > 2 || !allDigits(frac))) {
		return 0, Errorf(EInvalidAmount, "amount %q is not a decimal", s)
	}
	for len(frac) < 2 {
		frac += "0"
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, Errorf(EInvalidAmount, "amount %q is out of range", s)
	}
	f, _ := strconv.ParseInt(frac, 10, 64)
	v := w*100 + f
	if neg {
		v = -v
	}
	return v, nil
}

// FormatMinor formats minor units as a decimal string with two decimals,
// with a leading "-" for negative values.
func FormatMinor(minor int64) string {
	sign := ""
	u := uint64(minor)
	if minor < 0 {
		sign = "-"
		u = -u // two's complement: correct even for math.MinInt64
	}
	return sign + strconv.FormatUint(u/100, 10) + "." + twoDigits(u%100)
}

func twoDigits(n uint64) string {
	if n < 10 {
		return "0" + strconv.FormatUint(n, 10)
	}
	return strconv.FormatUint(n, 10)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// currencies is the ISO 4217 list of active alphabetic codes the API accepts
// in input. bunq itself holds EUR accounts; other currencies are refused by
// the bank with its own message, which the API passes on.
var currencies = func() map[string]bool {
	m := map[string]bool{}
	for _, c := range strings.Fields(`AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB
BRL BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP
GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW
KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN
NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS
SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD
XOF XPF YER ZAR ZMW ZWL`) {
		m[c] = true
	}
	return m
}()

// ValidCurrency reports whether code is an active ISO 4217 alphabetic code.
func ValidCurrency(code string) bool { return currencies[code] }

// ParseMoney validates m and returns its value in minor units.
func ParseMoney(m Money) (int64, error) {
	if !ValidCurrency(m.Currency) {
		return 0, Errorf(EInvalidCurrency, "currency %q is not an ISO 4217 code such as \"EUR\"", m.Currency)
	}
	return ParseMinor(m.Amount)
}
