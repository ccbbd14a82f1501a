package pisp

import (
	"encoding/json"
	"testing"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/psd2"
)

func TestDraftOutcome(t *testing.T) {
	t.Parallel()
	withPayment := json.RawMessage(`{"Payment":{"id":77}}`)
	for _, tc := range []struct {
		status string
		object json.RawMessage
		want   tpp.PaymentStatus
		code   string
		known  bool
	}{
		{"PENDING", nil, tpp.PaymentPending, "", true},
		{"ACCEPTED", withPayment, tpp.PaymentExecuted, "", true},
		{"ACCEPTED", nil, tpp.PaymentPending, "", true}, // accepted, payment not there yet
		{"ACCEPTED", json.RawMessage(`{"PaymentBatch":{}}`), tpp.PaymentPending, "", true},
		{"COMPLETED", nil, tpp.PaymentExecuted, "", true},
		{"REJECTED", nil, tpp.PaymentRejected, "", true},
		{"CANCELLED", nil, tpp.PaymentCancelled, "", true},
		{"EXPIRED", nil, tpp.PaymentFailed, tpp.EConsentExpired, true},
		{"REVOKED", nil, tpp.PaymentPending, "", false},
		{"", nil, tpp.PaymentPending, "", false},
	} {
		d := psd2.DraftPayment{Status: tc.status, Object: tc.object}
		if got, code, known := draftOutcome(&d); got != tc.want || code != tc.code || known != tc.known {
			t.Errorf("%s %s: %s %q %v, want %s %q %v", tc.status, tc.object, got, code, known, tc.want, tc.code, tc.known)
		}
	}
	for status, want := range map[string]tpp.PaymentStatus{
		"PENDING": tpp.PaymentPending, "ACCEPTED": tpp.PaymentExecuted, "COMPLETED": tpp.PaymentExecuted,
		"REJECTED": tpp.PaymentRejected, "CANCELLED": tpp.PaymentCancelled, "EXPIRED": tpp.PaymentFailed,
		"SETTLING": tpp.PaymentPending,
	} {
		if got, _, _ := pspOutcome(status); got != want {
			t.Errorf("PSP %s: %s, want %s", status, got, want)
		}
	}
}

func TestDraftMatches(t *testing.T) {
	t.Parallel()
	p := &tpp.Payment{ID: "pay_1", AmountMinor: 1250, Currency: "EUR", CounterpartyIBAN: "NL02ABNA0123456789"}
	entry := func(ref, value, iban string) psd2.DraftPayment {
		return psd2.DraftPayment{Entries: []psd2.DraftPaymentEntryRead{{
			MerchantReference: ref, Amount: psd2.Amount{Value: value, Currency: "EUR"},
			CounterpartyAlias: psd2.LabelMonetaryAccount{IBAN: iban},
		}}}
	}
	for _, tc := range []struct {
		d    psd2.DraftPayment
		want bool
	}{
		{entry("pay_1", "12.50", "NL02ABNA0123456789"), true},
		{entry("pay_1", "12.5", "nl02 abna 0123 4567 89"), true},
		{entry("pay_2", "12.50", "NL02ABNA0123456789"), false},
		{entry("pay_1", "12.51", "NL02ABNA0123456789"), false},
		{entry("pay_1", "12.50", "NL91ABNA0417164300"), false},
		// bunq may not echo the reference: content decides.
		{entry("", "12.50", "NL02ABNA0123456789"), true},
		{psd2.DraftPayment{}, false},
	} {
		if got := draftMatches(&tc.d, p); got != tc.want {
			t.Errorf("%+v: %v, want %v", tc.d.Entries, got, tc.want)
		}
	}
}

func TestAmbiguous(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&psd2.TransportError{Sent: true}, true},
		{&psd2.TransportError{Sent: false}, false},
		{&psd2.APIError{Kind: psd2.KindServer}, true},
		{&psd2.APIError{Kind: psd2.KindBadRequest}, false},
		{&psd2.APIError{Kind: psd2.KindRateLimited}, false},
		{&psd2.SignatureError{}, true},
		{&psd2.ResponseError{}, true},
	} {
		if got := ambiguous(tc.err); got != tc.want {
			t.Errorf("%T %v: %v, want %v", tc.err, tc.err, got, tc.want)
		}
	}
}

func TestText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		ok   bool
		name string
	}{
		{"Order 1042 – café", true, "unicode"},
		{string(make([]rune, 0)), false, "empty"},
		{"a\u2028b", false, "line separator"},
		{"a\u0085b", false, "C1 control"},
		{"\xff", false, "invalid UTF-8"},
	} {
		_, err := text("description", tc.in, 140, true)
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
