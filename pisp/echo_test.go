package pisp_test

import (
	"testing"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/internal/banktest"
)

// bunq does not document echoing a draft entry's merchant_reference. With
// the emulator's echo off, an ambiguous create is still reconciled, by
// amount, counterparty, description and time, to the right draft: not to
// an older identical-looking one another payment claimed, nor to one with
// another description; and the draft's status is still read.
func TestAmbiguousFailureReconcilesWithoutReferenceEcho(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	h.env.SetMerchantReferenceEcho(t, false)
	con := h.connect()
	// Decoys: a claimed draft with the same content, and an unclaimed one
	// with another description.
	claimed := h.createPayment(con, "k-claimed", h.paymentBody("9.99", "Same order"))
	other := h.createPayment(con, "k-other", h.paymentBody("9.99", "Another order"))
	h.env.ResetStats(t)
	h.env.Fault(t, banktest.Fault{Method: "POST", Path: "/v1/user/*/monetary-account/*/draft-payment", Kind: banktest.FaultDrop, Count: 1})
	r := h.createPayment(con, "k-drop", h.paymentBody("9.99", "Same order"))
	if st := h.env.Stats(t); st[draftCreate] != 1 || st[draftList] < 1 {
		t.Fatalf("stats after drop: %v", st)
	}
	got := bankID(t, r)
	if got == bankID(t, claimed) || got == bankID(t, other) {
		t.Fatalf("reconciled to a decoy draft %d", got)
	}
	if d := h.bankDraft(con, h.payer().Accounts[0].ID, got); len(d.Entries) != 1 || d.Entries[0].MerchantReference != "" ||
		d.Entries[0].Description != "Same order" {
		t.Fatalf("the reconciled draft: %+v", d.Entries)
	}
	// Its status is read without the echo too.
	h.env.AcceptDraftPayment(t, got)
	h.waitStatus(r.str("id"), tpp.PaymentExecuted)
}
