package storetest

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/pisp"
)

func testConsentCreateAndScopedGet(t *testing.T, open Open) {
	ctx := context.Background()
	f := newFixture(t, open)
	a, _ := f.client(t)
	b, _ := f.client(t)
	con := f.consent(t, a, "user-1", tpp.ScopePayments, tpp.ScopeAccounts, tpp.ScopeAccounts)

	if !strings.HasPrefix(con.ID, "con_") || con.Status != tpp.ConsentPending {
		t.Fatalf("consent = %+v", con)
	}
	if got := con.ExpiresAt.Sub(con.CreatedAt); got != tpp.ConsentPendingTTL {
		t.Fatalf("pending lifetime = %v", got)
	}
	if len(con.Scopes) != 2 || con.Scopes[0] != tpp.ScopeAccounts || con.Scopes[1] != tpp.ScopePayments {
		t.Fatalf("scopes = %v", con.Scopes)
	}

	if got, err := f.consents.Consent(ctx, a.ID, con.ID); err != nil || got.ID != con.ID {
		t.Fatalf("own consent: %v, %v", got, err)
	}
	// Another client's consent and an unknown id give the same error.
	_, errOther := f.consents.Consent(ctx, b.ID, con.ID)
	_, errUnknown := f.consents.Consent(ctx, b.ID, "con_doesnotexist")
	wantCode(t, errOther, tpp.EConsentNotFound)
	wantCode(t, errUnknown, tpp.EConsentNotFound)
	if strings.ReplaceAll(errOther.Error(), con.ID, "X") != strings.ReplaceAll(errUnknown.Error(), "con_doesnotexist", "X") {
		t.Fatalf("errors differ: %q vs %q", errOther, errUnknown)
	}
	_, err := f.consents.Consent(ctx, "", con.ID)
	wantCode(t, err, tpp.EConsentNotFound)
	// Client b cannot revoke a's consent either.
	_, err = f.consents.TransitionConsent(ctx, tpp.ConsentTransition{
		ID: con.ID, ClientID: b.ID, To: tpp.ConsentRevoked, Actor: tpp.ActorClient(b.ID)})
	wantCode(t, err, tpp.EConsentNotFound)
	// A client actor that is not scoped to itself is refused outright.
	_, err = f.consents.TransitionConsent(ctx, tpp.ConsentTransition{
		ID: con.ID, To: tpp.ConsentRevoked, Actor: tpp.ActorClient(b.ID)})
	wantCode(t, err, tpp.EInternal)
}

func testCreateConsentRejects(t *testing.T, open Open) {
	ctx := context.Background()
	f := newFixture(t, open)
	c, _ := f.client(t)
	base := tpp.NewConsent{ClientID: c.ID, UserRef: "u", Scopes: []tpp.Scope{tpp.ScopeAccounts},
		ReturnURL: c.ReturnURLs[0], Actor: tpp.ActorClient(c.ID)}
	cases := []struct {
		name string
		mod  func(*tpp.NewConsent)
		code string
	}{
		{"unregistered return url", func(n *tpp.NewConsent) { n.ReturnURL = "https://acme.example/return/" }, tpp.EInvalidReturnURL},
		{"case differs", func(n *tpp.NewConsent) { n.ReturnURL = "https://ACME.example/return" }, tpp.EInvalidReturnURL},
		{"no scopes", func(n *tpp.NewConsent) { n.Scopes = nil }, tpp.EInvalidScope},
		{"bad scope", func(n *tpp.NewConsent) { n.Scopes = []tpp.Scope{"everything"} }, tpp.EInvalidScope},
		{"unknown client", func(n *tpp.NewConsent) { n.ClientID = "cli_x"; n.Actor = tpp.ActorClient("cli_x") }, tpp.ENotFound},
	}
	for _, tc := range cases {
		in := base
		tc.mod(&in)
		_, err := f.consents.CreateConsent(ctx, in)
		if tpp.ErrorCode(err) != tc.code {
			t.Errorf("%s: error %v, want %s", tc.name, err, tc.code)
		}
	}
	if _, err := f.clients.RevokeClient(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	_, err := f.consents.CreateConsent(ctx, base)
	wantCode(t, err, tpp.EUnauthorized)
	if n := count(t, f.db, `SELECT COUNT(*) FROM consents`); n != 0 {
		t.Fatalf("%d consents stored after failures", n)
	}
}

func testConsentLifecycleAuditAndOutbox(t *testing.T, open Open) {
	ctx := context.Background()
	f := newFixture(t, open)
	c, _ := f.client(t)
	con := f.consent(t, c, "user-1")

	f.clock.Add(time.Minute)
	act := f.activate(t, con, 4242)
	if act.Status != tpp.ConsentActive || act.BunqUserID != 4242 || act.BunqUserName != "Jane Doe" || !act.HasToken {
		t.Fatalf("active consent = %+v", act)
	}
	if act.AuthorizedAt == nil || act.ReauthDueAt == nil || act.ReauthDueAt.Sub(*act.AuthorizedAt) != tpp.ConsentReauthAfter {
		t.Fatalf("authorized %v, reauth due %v", act.AuthorizedAt, act.ReauthDueAt)
	}
	tok, err := f.consents.AccessToken(ctx, con.ID)
	if err != nil || tok != "secret-oauth-token-"+con.ID {
		t.Fatalf("AccessToken = %q, %v", tok, err)
	}
	// The token is sealed at rest.
	var sealed string
	f.db.GetContext(context.Background(), &sealed, `SELECT access_token_sealed FROM consents WHERE id = ?`, con.ID)
	if strings.Contains(sealed, "secret-oauth-token") {
		t.Fatal("access token stored in the clear")
	}

	// Re-authentication: active → reauth_required → active, same id.
	if _, err := f.consents.TransitionConsent(ctx, tpp.ConsentTransition{ID: con.ID, To: tpp.ConsentReauthRequired,
		Actor: tpp.ActorSystem}); err != nil {
		t.Fatal(err)
	}
	_, err = f.consents.AccessToken(ctx, con.ID)
	wantCode(t, err, tpp.EConsentReauthRequired)
	// Another bunq user may not take the consent over.
	_, err = f.consents.TransitionConsent(ctx, tpp.ConsentTransition{ID: con.ID, To: tpp.ConsentActive,
		BunqUserID: 999, AccessToken: "t", Actor: tpp.ActorPSU})
	wantCode(t, err, tpp.EConflict)
	f.clock.Add(time.Hour)
	re := f.activate(t, con, 4242)
	if re.ID != con.ID || !re.AuthorizedAt.After(*act.AuthorizedAt) {
		t.Fatalf("re-authorized consent = %+v", re)
	}

	f.clock.Add(time.Second)
	rev, err := f.consents.TransitionConsent(ctx, tpp.ConsentTransition{ID: con.ID, ClientID: c.ID,
		To: tpp.ConsentRevoked, Actor: tpp.ActorClient(c.ID), RequestID: "req-rev", Detail: "user asked"})
	if err != nil || rev.Status != tpp.ConsentRevoked || rev.RevokedAt == nil || rev.HasToken {
		t.Fatalf("revoked = %+v, %v", rev, err)
	}
	_, err = f.consents.AccessToken(ctx, con.ID)
	wantCode(t, err, tpp.EConsentRevoked)

	recs, err := f.audit.ListAudit(ctx, tpp.AuditFilter{ConsentID: con.ID}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var trail []string
	for _, r := range recs {
		trail = append(trail, r.Actor+":"+r.From+">"+r.To)
	}
	want := []string{
		"client:" + c.ID + ":>pending", "psu:pending>active", "system:active>reauth_required",
		"psu:reauth_required>active", "client:" + c.ID + ":active>revoked",
	}
	if strings.Join(trail, " ") != strings.Join(want, " ") {
		t.Fatalf("audit trail\n got %v\nwant %v", trail, want)
	}
	if last := recs[len(recs)-1]; last.RequestID != "req-rev" || last.Detail != "user asked" {
		t.Fatalf("last audit record = %+v", last)
	}

	// One consent.updated event (with a queued delivery) per transition.
	evs, err := f.outbox.Events(ctx, c.ID, tpp.PageRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs.Items) != 4 {
		t.Fatalf("%d events, want 4", len(evs.Items))
	}
	var body struct {
		Type string               `json:"type"`
		Data tpp.ConsentEventData `json:"data"`
	}
	if err := json.Unmarshal(evs.Items[0].Payload, &body); err != nil {
		t.Fatal(err)
	}
	if body.Type != tpp.EventConsentUpdated || body.Data.Status != "revoked" || body.Data.PreviousStatus != "active" ||
		body.Data.ConsentID != con.ID || body.Data.UserRef != "user-1" {
		t.Fatalf("latest event = %s", evs.Items[0].Payload)
	}
	if n := count(t, f.db, `SELECT COUNT(*) FROM webhook_deliveries`); n != 4 {
		t.Fatalf("%d deliveries queued, want 4", n)
	}
}

func testIllegalConsentTransitionsWriteNothing(t *testing.T, open Open) {
	ctx := context.Background()
	f := newFixture(t, open)
	c, _ := f.client(t)

	mk := func(to ...tpp.ConsentStatus) *tpp.Consent {
		con := f.consent(t, c, "u")
		for _, s := range to {
			in := tpp.ConsentTransition{ID: con.ID, To: s, Actor: tpp.ActorSystem}
			if s == tpp.ConsentActive {
				in.BunqUserID, in.AccessToken = 1, "tok"
			}
			if _, err := f.consents.TransitionConsent(ctx, in); err != nil {
				t.Fatalf("setup to %s: %v", s, err)
			}
		}
		return con
	}
	cases := []struct {
		path []tpp.ConsentStatus
		to   tpp.ConsentStatus
		code string
	}{
		{nil, tpp.ConsentReauthRequired, tpp.EConflict},
		{[]tpp.ConsentStatus{tpp.ConsentActive}, tpp.ConsentActive, tpp.EConflict},
		{[]tpp.ConsentStatus{tpp.ConsentActive}, tpp.ConsentExpired, tpp.EConflict},
		{[]tpp.ConsentStatus{tpp.ConsentActive}, tpp.ConsentPending, tpp.EConflict},
		{[]tpp.ConsentStatus{tpp.ConsentRevoked}, tpp.ConsentActive, tpp.EConsentRevoked},
		{[]tpp.ConsentStatus{tpp.ConsentRevoked}, tpp.ConsentRevoked, tpp.EConsentRevoked},
		{[]tpp.ConsentStatus{tpp.ConsentExpired}, tpp.ConsentActive, tpp.EConsentExpired},
		{[]tpp.ConsentStatus{tpp.ConsentRejected}, tpp.ConsentActive, tpp.EConsentNotActive},
		{[]tpp.ConsentStatus{tpp.ConsentActive, tpp.ConsentReauthRequired}, tpp.ConsentExpired, tpp.EConflict},
	}
	for _, tc := range cases {
		con := mk(tc.path...)
		auditBefore := count(t, f.db, `SELECT COUNT(*) FROM audit_log`)
		eventsBefore := count(t, f.db, `SELECT COUNT(*) FROM webhook_events`)
		before, _ := f.consents.ConsentByID(ctx, con.ID)
		f.clock.Add(time.Second)
		in := tpp.ConsentTransition{ID: con.ID, To: tc.to, Actor: tpp.ActorSystem, BunqUserID: 1, AccessToken: "tok"}
		_, err := f.consents.TransitionConsent(ctx, in)
		if tpp.ErrorCode(err) != tc.code {
			t.Errorf("%v → %s: error %v, want %s", tc.path, tc.to, err, tc.code)
		}
		after, _ := f.consents.ConsentByID(ctx, con.ID)
		if after.Status != before.Status || !after.UpdatedAt.Equal(before.UpdatedAt) ||
			count(t, f.db, `SELECT COUNT(*) FROM audit_log`) != auditBefore ||
			count(t, f.db, `SELECT COUNT(*) FROM webhook_events`) != eventsBefore {
			t.Errorf("%v → %s: something was written", tc.path, tc.to)
		}
	}

	// Conditional transition: From must match.
	con := mk()
	_, err := f.consents.TransitionConsent(ctx, tpp.ConsentTransition{ID: con.ID, From: tpp.ConsentActive,
		To: tpp.ConsentRevoked, Actor: tpp.ActorSystem})
	wantCode(t, err, tpp.EConflict)
	// Activating needs the user and a token.
	_, err = f.consents.TransitionConsent(ctx, tpp.ConsentTransition{ID: con.ID, To: tpp.ConsentActive, Actor: tpp.ActorPSU})
	wantCode(t, err, tpp.EInternal)
	// A pending consent past its deadline cannot be activated.
	f.clock.Add(tpp.ConsentPendingTTL)
	_, err = f.consents.TransitionConsent(ctx, tpp.ConsentTransition{ID: con.ID, To: tpp.ConsentActive,
		BunqUserID: 1, AccessToken: "t", Actor: tpp.ActorPSU})
	wantCode(t, err, tpp.EConsentExpired)
}

// TestConcurrentActivation races 20 goroutines to activate one consent:
// exactly one wins, and exactly one audit record and event are written.
func testConcurrentActivation(t *testing.T, open Open) {
	ctx := context.Background()
	f := newFixture(t, open)
	c, _ := f.client(t)
	con := f.consent(t, c, "u")

	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			_, errs[i] = f.consents.TransitionConsent(ctx, tpp.ConsentTransition{ID: con.ID, To: tpp.ConsentActive,
				BunqUserID: 77, AccessToken: "tok", Actor: tpp.ActorPSU})
		}(i)
	}
	close(start)
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case tpp.ErrorCode(err) != tpp.EConflict:
			t.Errorf("loser got %v, want conflict", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d winners, want 1", wins)
	}
	if got := count(t, f.db, `SELECT COUNT(*) FROM audit_log WHERE consent_id = ? AND to_status = 'active'`, con.ID); got != 1 {
		t.Fatalf("%d activation audit records", got)
	}
	if got := count(t, f.db, `SELECT COUNT(*) FROM webhook_events WHERE client_id = ?`, c.ID); got != 1 {
		t.Fatalf("%d events", got)
	}
}

func testListConsentsPagingNoGapsNoDupes(t *testing.T, open Open) {
	ctx := context.Background()
	f := newFixture(t, open)
	a, _ := f.client(t)
	b, _ := f.client(t)
	want := map[string]bool{}
	for i := 0; i < 23; i++ {
		con := f.consent(t, a, "alice")
		want[con.ID] = true
		f.consent(t, a, "bob")
		f.consent(t, b, "alice")
		if i%4 == 0 {
			f.clock.Add(time.Millisecond) // mix shared and distinct timestamps
		}
	}
	for _, limit := range []int{1, 5, 23, 100} {
		seen := map[string]bool{}
		var prev *tpp.Consent
		for _, c := range f.listAll(t, tpp.ConsentFilter{ClientID: a.ID, UserRef: "alice"}, limit) {
			if seen[c.ID] || !want[c.ID] {
				t.Fatalf("limit %d: consent %s duplicated or foreign", limit, c.ID)
			}
			seen[c.ID] = true
			if prev != nil && (c.CreatedAt.After(prev.CreatedAt) || (c.CreatedAt.Equal(prev.CreatedAt) && c.ID > prev.ID)) {
				t.Fatalf("limit %d: order broken at %s", limit, c.ID)
			}
			prev = c
		}
		if len(seen) != len(want) {
			t.Fatalf("limit %d: listed %d of %d", limit, len(seen), len(want))
		}
	}
	_, err := f.consents.ListConsents(ctx, tpp.ConsentFilter{ClientID: a.ID}, tpp.PageRequest{Cursor: "!!!"})
	wantCode(t, err, tpp.EInvalidCursor)
	p, err := f.consents.ListConsents(ctx, tpp.ConsentFilter{ClientID: a.ID, Status: tpp.ConsentActive}, tpp.PageRequest{})
	if err != nil || len(p.Items) != 0 {
		t.Fatalf("active filter: %d, %v", len(p.Items), err)
	}
}

// listAll walks every page of a consent list with the given page size:
// no page is over it, and only the last may be short.
func (f *fixture) listAll(t *testing.T, filter tpp.ConsentFilter, limit int) []*tpp.Consent {
	t.Helper()
	var all []*tpp.Consent
	cursor := ""
	for range 1000 {
		p, err := f.consents.ListConsents(context.Background(), filter, tpp.PageRequest{Limit: limit, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Items) > limit || (len(p.Items) < limit && p.NextCursor != "") {
			t.Fatalf("limit %d: page of %d, next cursor %q", limit, len(p.Items), p.NextCursor)
		}
		all = append(all, p.Items...)
		if cursor = p.NextCursor; cursor == "" {
			return all
		}
	}
	t.Fatalf("limit %d: no last page after 1000 pages", limit)
	return nil
}

func testConsentsByBunqUserAndDue(t *testing.T, open Open) {
	ctx := context.Background()
	f := newFixture(t, open)
	c, _ := f.client(t)
	c1 := f.activate(t, f.consent(t, c, "u1"), 10)
	f.clock.Add(time.Second)
	c2 := f.activate(t, f.consent(t, c, "u2"), 10)
	f.activate(t, f.consent(t, c, "u3"), 11)
	pending := f.consent(t, c, "u4")

	got, err := f.consents.ConsentsByBunqUser(ctx, 10)
	if err != nil || len(got) != 2 || got[0].ID != c1.ID || got[1].ID != c2.ID {
		t.Fatalf("by bunq user = %v, %v", got, err)
	}

	due, _ := f.consents.DueConsents(ctx, f.clock.Now(), 10)
	if len(due) != 0 {
		t.Fatalf("%d due now", len(due))
	}
	due, _ = f.consents.DueConsents(ctx, f.clock.Now().Add(tpp.ConsentPendingTTL), 10)
	if len(due) != 1 || due[0].ID != pending.ID {
		t.Fatalf("due after 15m = %v", due)
	}
	due, _ = f.consents.DueConsents(ctx, f.clock.Now().Add(tpp.ConsentReauthAfter), 10)
	if len(due) != 4 {
		t.Fatalf("due after 180d = %d, want 4", len(due))
	}
	// Past the re-auth date the token is refused even before a sweeper runs.
	f.clock.Add(tpp.ConsentReauthAfter)
	_, err = f.consents.AccessToken(ctx, c1.ID)
	wantCode(t, err, tpp.EConsentReauthRequired)
}

func testSetAndClearAccessToken(t *testing.T, open Open) {
	ctx := context.Background()
	f := newFixture(t, open)
	c, _ := f.client(t)
	pending := f.consent(t, c, "u")
	err := f.consents.SetAccessToken(ctx, pending.ID, "x")
	wantCode(t, err, tpp.EConsentNotActive)

	con := f.activate(t, f.consent(t, c, "u"), 5)
	if err := f.consents.SetAccessToken(ctx, con.ID, "refreshed"); err != nil {
		t.Fatal(err)
	}
	if tok, err := f.consents.AccessToken(ctx, con.ID); err != nil || tok != "refreshed" {
		t.Fatalf("after set: %q, %v", tok, err)
	}
	if err := f.consents.ClearAccessToken(ctx, con.ID); err != nil {
		t.Fatal(err)
	}
	_, err = f.consents.AccessToken(ctx, con.ID)
	wantCode(t, err, tpp.EConsentNotActive)

	// A token sealed for one consent does not open as another's.
	other := f.activate(t, f.consent(t, c, "u"), 5)
	exec(t, f.db, `UPDATE consents SET access_token_sealed = (SELECT access_token_sealed FROM consents WHERE id = ?) WHERE id = ?`, other.ID, con.ID)
	if _, err := f.consents.AccessToken(ctx, con.ID); err == nil || tpp.ErrorCode(err) != tpp.EInternal {
		t.Fatalf("swapped token: %v", err)
	}
}

// The consent a single payment makes (user_ref pisp.SinglePaymentUserRef)
// is the payment's, not the fintech's: it is never listed, even when asked
// for by its user_ref, and paging over it loses and repeats nothing.
func testListConsentsHidesSinglePaymentConsents(t *testing.T, open Open) {
	ctx := context.Background()
	f := newFixture(t, open)
	c, _ := f.client(t)
	var visible []string // newest first
	for i := range 7 {
		f.consent(t, c, pisp.SinglePaymentUserRef, tpp.ScopePayments)
		if i%2 == 0 {
			visible = append([]string{f.consent(t, c, "alice").ID}, visible...)
		}
		f.clock.Add(time.Millisecond)
	}
	// A look-alike that differs in case is an ordinary reference.
	visible = append([]string{f.consent(t, c, "TPP:single-payment").ID}, visible...)

	var got []string
	for _, c := range f.listAll(t, tpp.ConsentFilter{ClientID: c.ID}, 2) {
		got = append(got, c.ID)
	}
	if strings.Join(got, ",") != strings.Join(visible, ",") {
		t.Fatalf("listed %v, want %v", got, visible)
	}
	p, err := f.consents.ListConsents(ctx, tpp.ConsentFilter{ClientID: c.ID, UserRef: pisp.SinglePaymentUserRef}, tpp.PageRequest{})
	if err != nil || len(p.Items) != 0 {
		t.Fatalf("by the reserved user_ref: %d items, %v", len(p.Items), err)
	}
}

// A single payment's consent sends no consent.updated webhook: the fintech
// hears of the payment, and could not read the consent the event names.
// Its transitions are audited like any other.
func testSinglePaymentConsentSendsNoConsentEvents(t *testing.T, open Open) {
	ctx := context.Background()
	f := newFixture(t, open)
	c, _ := f.client(t)
	con := f.consent(t, c, pisp.SinglePaymentUserRef, tpp.ScopePayments)
	f.activate(t, con, 4242)
	if _, err := f.consents.TransitionConsent(ctx, tpp.ConsentTransition{ID: con.ID, To: tpp.ConsentRevoked, Actor: tpp.ActorSystem}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, f.db, `SELECT COUNT(*) FROM webhook_events`); n != 0 {
		t.Fatalf("%d events for a single payment's consent, want none", n)
	}
	recs, err := f.audit.ListAudit(ctx, tpp.AuditFilter{ConsentID: con.ID}, 0, 0)
	if err != nil || len(recs) != 3 {
		t.Fatalf("audit records %d, %v; want created, active, revoked", len(recs), err)
	}
	// An ordinary consent of the same client still sends them.
	other := f.consent(t, c, "user-1")
	f.activate(t, other, 4243)
	if n := count(t, f.db, `SELECT COUNT(*) FROM webhook_events`); n != 1 {
		t.Fatalf("%d events after activating an ordinary consent, want 1", n)
	}
}

func testSinglePaymentOf(t *testing.T, open Open) {
	ctx := context.Background()
	f := newFixture(t, open)
	c, _ := f.client(t)
	con := f.consent(t, c, pisp.SinglePaymentUserRef, tpp.ScopePayments)
	_, err := f.consents.SinglePaymentOf(ctx, con.ID)
	wantCode(t, err, tpp.EPaymentNotFound)

	in := newDraft(c, con)
	in.Kind, in.DebtorIBAN, in.DebtorName, in.AccountID = tpp.PaymentSingle, ibanDE, "Jane", 0
	sp, err := f.payments.CreatePayment(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.consents.SinglePaymentOf(ctx, con.ID)
	if err != nil || got.ID != sp.ID || got.Status != tpp.PaymentPending || len(got.StatusHistory) != 1 {
		t.Fatalf("single payment of the consent = %+v, %v", got, err)
	}
	// A draft payment under an ordinary consent is not a single payment.
	active := f.activate(t, f.consent(t, c, "u"), 1)
	if _, err := f.payments.CreatePayment(ctx, newDraft(c, active)); err != nil {
		t.Fatal(err)
	}
	_, err = f.consents.SinglePaymentOf(ctx, active.ID)
	wantCode(t, err, tpp.EPaymentNotFound)
}
