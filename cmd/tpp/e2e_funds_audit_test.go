package main

import (
	"net/http"
	"testing"
)

// A funds check is audited with the bank's ids of the confirmation call:
// the response id reaches cbpii through the bank client's call hook, which
// serve must feed to the services that asked for it.
func TestE2EFundsAuditCarriesBankResponseID(t *testing.T) {
	t.Parallel()
	h := startHarness(t)
	consent := h.activeConsent(t, "funds")
	r := h.apiAs(h.APIKey, http.MethodPost, "/v1/consents/"+consent+"/funds-confirmations",
		map[string]any{"iban": h.person().Accounts[0].IBAN, "amount": map[string]string{"amount": "1.00", "currency": "EUR"}}, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("funds check: %d %v", r.Status, r.Body)
	}
	const checks = `SELECT count(*) FROM audit_log WHERE action = 'funds.checked' AND consent_id = ?`
	if n := countRows(t, h.DBPath, checks, consent); n != 1 {
		t.Fatalf("%d funds checks audited, want 1", n)
	}
	if n := countRows(t, h.DBPath, checks+` AND detail LIKE '%bank_request_id=%' AND detail NOT LIKE '%bank_response_id=-%'`, consent); n != 1 {
		t.Errorf("the funds check was audited without the bank's response id")
	}
}
