package bankctx

import (
	"log/slog"

	"github.com/bunqtpp/tpp/psd2"
)

// CredentialsAlerter is what AlertCredentialsRefused reports to.
type CredentialsAlerter interface{ CredentialsRefused() }

// AlertCredentialsRefused raises the operator alert for bunq refusing a
// session with "User credentials are incorrect. Incorrect API key or IP
// address.": the egress IP changed or --permitted-ips leaves it out. It is
// logged as an error and counted (tpp_bank_credentials_refused_total);
// consents are never revoked for it. Give it every bank call (psd2's
// OnCall).
func AlertCredentialsRefused(log *slog.Logger, m CredentialsAlerter, ci psd2.CallInfo) {
	if ci.Err == nil || !CredentialsRefused(ci.Err) {
		return
	}
	m.CredentialsRefused()
	log.Error("bunq refused a session: credentials refused, check the permitted IPs and the egress IP (tpp register --permitted-ips)",
		"path", ci.Path, "bank_request_id", ci.RequestID, "bank_response_id", ci.ResponseID)
}
