package storetest

import (
	"context"
	"testing"

	"github.com/bunqtpp/tpp"
)

// client creates an active client with a webhook URL.
func (f *fixture) client(t *testing.T) (*tpp.FintechClient, tpp.ClientSecrets) {
	t.Helper()
	c, sec, err := f.clients.CreateClient(context.Background(), tpp.NewClient{
		Name:       "Acme Budget",
		ReturnURLs: []string{"https://acme.example/return", "http://localhost:3000/cb"},
		WebhookURL: "https://acme.example/hooks",
	})
	if err != nil {
		t.Fatalf("CreateClient: %v", err)
	}
	return c, sec
}

// consent creates a pending consent for c.
func (f *fixture) consent(t *testing.T, c *tpp.FintechClient, userRef string, scopes ...tpp.Scope) *tpp.Consent {
	t.Helper()
	if len(scopes) == 0 {
		scopes = []tpp.Scope{tpp.ScopeAccounts, tpp.ScopePayments}
	}
	con, err := f.consents.CreateConsent(context.Background(), tpp.NewConsent{
		ClientID: c.ID, UserRef: userRef, Scopes: scopes, ReturnURL: c.ReturnURLs[0],
		Actor: tpp.ActorClient(c.ID), RequestID: "req-create",
	})
	if err != nil {
		t.Fatalf("CreateConsent: %v", err)
	}
	return con
}

// activate moves a pending consent to active as the PSU.
func (f *fixture) activate(t *testing.T, con *tpp.Consent, bunqUser int64) *tpp.Consent {
	t.Helper()
	out, err := f.consents.TransitionConsent(context.Background(), tpp.ConsentTransition{
		ID: con.ID, To: tpp.ConsentActive, BunqUserID: bunqUser, BunqUserName: "Jane Doe",
		AccessToken: "secret-oauth-token-" + con.ID, Actor: tpp.ActorPSU, RequestID: "req-cb",
	})
	if err != nil {
		t.Fatalf("activate: %v", err)
	}
	return out
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want code %s", code)
	}
	if got := tpp.ErrorCode(err); got != code {
		t.Fatalf("error code = %s (%v), want %s", got, err, code)
	}
}

// Cases is the table of behaviours every store shows.
var Cases = []Case{
	{"AuditLogIsAppendOnly", testAuditLogIsAppendOnly},
	{"ClientCreateGetAuthenticate", testClientCreateGetAuthenticate},
	{"AuthenticateRejects", testAuthenticateRejects},
	{"RotateAndRevoke", testRotateAndRevoke},
	{"CreateClientValidates", testCreateClientValidates},
	{"ListClientsPaging", testListClientsPaging},
	{"RevokeClientRevokesLiveConsents", testRevokeClientRevokesLiveConsents},
	{"RevokeClientQueuesConsentCloses", testRevokeClientQueuesConsentCloses},
	{"ConsentCreateAndScopedGet", testConsentCreateAndScopedGet},
	{"CreateConsentRejects", testCreateConsentRejects},
	{"ConsentLifecycleAuditAndOutbox", testConsentLifecycleAuditAndOutbox},
	{"IllegalConsentTransitionsWriteNothing", testIllegalConsentTransitionsWriteNothing},
	{"ConcurrentActivation", testConcurrentActivation},
	{"ListConsentsPagingNoGapsNoDupes", testListConsentsPagingNoGapsNoDupes},
	{"ConsentsByBunqUserAndDue", testConsentsByBunqUserAndDue},
	{"SetAndClearAccessToken", testSetAndClearAccessToken},
	{"ListConsentsHidesSinglePaymentConsents", testListConsentsHidesSinglePaymentConsents},
	{"SinglePaymentConsentSendsNoConsentEvents", testSinglePaymentConsentSendsNoConsentEvents},
	{"SinglePaymentOf", testSinglePaymentOf},
	{"IdempotencyFlow", testIdempotencyFlow},
	{"IdempotencyAbandonedClaim", testIdempotencyAbandonedClaim},
	{"IdempotencyConcurrentBegin", testIdempotencyConcurrentBegin},
	{"OutboxClaimDeliverRetry", testOutboxClaimDeliverRetry},
	{"OutboxAbandonsAfterSchedule", testOutboxAbandonsAfterSchedule},
	{"OutboxSkipsClientsWithoutWebhooks", testOutboxSkipsClientsWithoutWebhooks},
	{"OutboxConcurrentClaims", testOutboxConcurrentClaims},
	{"OutboxScheduleRetry", testOutboxScheduleRetry},
	{"PaymentLifecycle", testPaymentLifecycle},
	{"CreatePaymentChecksConsent", testCreatePaymentChecksConsent},
	{"PaymentScopingAndList", testPaymentScopingAndList},
	{"RegistrationStore", testRegistrationStore},
	{"DuePaymentsOrderAndSchedule", testDuePaymentsOrderAndSchedule},
	{"WriteLockHeldElsewhere", testWriteLockHeldElsewhere},
	{"ConsentRecordsGrantOrigin", testConsentRecordsGrantOrigin},
	{"NotifyExpiringOncePerAuthorization", testNotifyExpiringOncePerAuthorization},
	{"WebhookEventsNumberedPerClient", testWebhookEventsNumberedPerClient},
	{"RekeyMovesEverySealedValueToTheCurrentKey", testRekeyMovesEverySealedValueToTheCurrentKey},
}
