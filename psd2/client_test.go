package psd2_test

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bunqtpp/tpp/internal/banktest"
	"github.com/bunqtpp/tpp/psd2"
	"github.com/bunqtpp/tpp/seal"
)

func TestEnvironments(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]psd2.Environment{"sandbox": psd2.Sandbox, "production": psd2.Production} {
		got, ok := psd2.LookupEnvironment(name)
		if !ok || got != want {
			t.Fatalf("LookupEnvironment(%q) = %+v, %v", name, got, ok)
		}
	}
	if psd2.Production.APIBaseURL != "https://api.bunq.com" || psd2.Sandbox.TokenURL != "https://api-oauth.sandbox.bunq.com/v1/token" ||
		psd2.Production.OAuthAuthorizeURL != "https://oauth.bunq.com/auth" {
		t.Fatal("environment hosts differ from the reference §1.1")
	}
	if _, err := psd2.New(psd2.Options{BaseURL: "ftp://x"}); err == nil {
		t.Fatal("non-http base URL accepted")
	}
}

func TestAPIKeyContextAndReads(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	ctx := context.Background()
	rec := &recorder{next: http.DefaultTransport}
	c := newClient(t, env, psd2.Options{HTTPClient: &http.Client{Transport: rec, Timeout: 10 * time.Second}})
	users := env.Users(t)
	if len(users) == 0 {
		t.Fatal("emulator has no seeded users")
	}
	u := users[0]
	key, _ := poolKey()
	bc, err := c.NewAPIKeyContext(ctx, u.APIKey, psd2.ContextOptions{Key: key, PermittedIPs: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	if bc.UserID() != u.ID || bc.Kind() != psd2.KindAPIKey || !bc.HasSession() {
		t.Fatalf("context %v, want user %d", bc, u.ID)
	}
	if ut := bc.UserType(); ut != psd2.UserTypePerson && ut != psd2.UserTypeCompany {
		t.Fatalf("session user type %q", ut)
	}
	if !bc.SessionExpiry().After(time.Now().Add(time.Minute)) {
		t.Fatalf("session expiry %v is not in the future", bc.SessionExpiry())
	}

	list, err := c.ListUsers(ctx, bc)
	if err != nil || len(list) != 1 || list[0].ID != u.ID || list[0].DisplayName != u.DisplayName {
		t.Fatalf("ListUsers = %+v, %v", list, err)
	}
	one, err := c.GetUser(ctx, bc, u.ID)
	if err != nil || one.ID != u.ID || one.Type != bc.UserType() {
		t.Fatalf("GetUser = %+v, %v", one, err)
	}

	accs, err := c.ListMonetaryAccounts(ctx, bc, psd2.Page{Count: 50})
	if err != nil {
		t.Fatal(err)
	}
	if len(accs.Items) != len(u.Accounts) || !accs.Pagination.Present {
		t.Fatalf("%d accounts (pagination %v), emulator says %d", len(accs.Items), accs.Pagination.Present, len(u.Accounts))
	}
	byID := map[int64]banktest.Account{}
	for _, a := range u.Accounts {
		byID[a.ID] = a
	}
	for _, a := range accs.Items {
		want, ok := byID[a.ID]
		iban, _ := a.IBAN()
		if !ok || a.Type != want.Type || iban != want.IBAN || a.Balance == nil || a.Balance.Value != want.Balance.Value ||
			a.Balance.Currency != want.Balance.Currency || a.Status != want.Status || len(a.Raw) == 0 {
			t.Fatalf("account %+v, emulator has %+v", a, want)
		}
		got, err := c.GetMonetaryAccount(ctx, bc, a.ID)
		if err != nil || got.ID != a.ID || got.Type != a.Type {
			t.Fatalf("GetMonetaryAccount(%d) = %+v, %v", a.ID, got, err)
		}
	}

	// Headers: every call carries the fixed set and a unique request id;
	// GETs are unsigned by default, session-server and device-server signed.
	seen := map[string]bool{}
	for _, r := range rec.all() {
		for _, h := range []string{"User-Agent", "X-Bunq-Client-Request-Id", "Cache-Control", "X-Bunq-Language", "X-Bunq-Region", "X-Bunq-Geolocation"} {
			if r.Header.Get(h) == "" {
				t.Errorf("%s %s lacks %s", r.Method, r.URL, h)
			}
		}
		id := r.Header.Get("X-Bunq-Client-Request-Id")
		if seen[id] {
			t.Errorf("request id %s reused", id)
		}
		seen[id] = true
		signed := r.Header.Get("X-Bunq-Client-Signature") != ""
		switch {
		case strings.HasSuffix(r.URL, "/v1/installation"):
			if signed || r.Header.Get("X-Bunq-Client-Authentication") != "" {
				t.Error("installation must carry neither auth nor signature")
			}
		case strings.HasSuffix(r.URL, "/v1/device-server"):
			// bunq does not require a signature here (reference §2.2); skipping
			// it saves an RSA signature per authorization.
			if signed {
				t.Errorf("%s signed without SignAll", r.URL)
			}
			if !strings.Contains(string(r.Body), `"permitted_ips":["*"]`) {
				t.Errorf("device-server body lacks permitted_ips: %s", r.Body)
			}
		case strings.HasSuffix(r.URL, "/v1/session-server"):
			if !signed {
				t.Errorf("%s not signed", r.URL)
			} else if err := psd2.Verify(&key.PublicKey, r.Body, r.Header.Get("X-Bunq-Client-Signature")); err != nil {
				t.Errorf("%s signature: %v", r.URL, err)
			}
		case r.Method == http.MethodGet && signed:
			t.Errorf("GET %s signed without SignAll", r.URL)
		}
	}
}

func TestSignAllSignsEveryCall(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	ctx := context.Background()
	rec := &recorder{next: http.DefaultTransport}
	c := newClient(t, env, psd2.Options{SignAll: true, HTTPClient: &http.Client{Transport: rec}})
	key, _ := poolKey()
	bc, err := c.NewAPIKeyContext(ctx, env.Users(t)[0].APIKey, psd2.ContextOptions{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListMonetaryAccounts(ctx, bc, psd2.Page{}); err != nil {
		t.Fatal(err)
	}
	for _, r := range rec.all() {
		if strings.HasSuffix(r.URL, "/v1/installation") {
			continue
		}
		if err := psd2.Verify(&key.PublicKey, r.Body, r.Header.Get("X-Bunq-Client-Signature")); err != nil {
			t.Errorf("%s %s: %v", r.Method, r.URL, err)
		}
	}
}

func TestSandboxUsers(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	ctx := context.Background()
	c := newClient(t, env, psd2.Options{})
	for _, create := range []func(context.Context) (string, error){c.CreateSandboxUserPerson, c.CreateSandboxUserCompany} {
		key, err := create(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(key, "sandbox_") {
			t.Fatalf("API key %q", key)
		}
		bc, err := c.NewAPIKeyContext(ctx, key, ctxOpts())
		if err != nil {
			t.Fatal(err)
		}
		accs, err := c.ListMonetaryAccounts(ctx, bc, psd2.Page{})
		if err != nil {
			t.Fatal(err)
		}
		if len(accs.Items) == 0 {
			t.Fatal("new sandbox user has no account")
		}
		if _, err := c.RequestSandboxMoney(ctx, bc, accs.Items[0].ID, "100.00"); err != nil {
			t.Fatalf("sugar daddy: %v", err)
		}
		got, err := c.GetMonetaryAccount(ctx, bc, accs.Items[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Balance == nil || got.Balance.Value == accs.Items[0].Balance.Value {
			t.Fatalf("balance %+v unchanged after sandbox money (was %+v)", got.Balance, accs.Items[0].Balance)
		}
	}
}

func TestPSD2ContextAndTPPCalls(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	ctx := context.Background()
	c := newClient(t, env, psd2.Options{})
	psp, err := c.NewPSD2Context(ctx, testCert(t, "Test TPP AISP PISP"), ctxOpts())
	if err != nil {
		t.Fatal(err)
	}
	if psp.UserType() != psd2.UserTypePaymentServiceProvider || psp.Kind() != psd2.KindPSD2 {
		t.Fatalf("PSD2 context %v", psp)
	}
	me, err := c.GetUser(ctx, psp, psp.UserID())
	if err != nil || me.Type != psd2.UserTypePaymentServiceProvider {
		t.Fatalf("GetUser = %+v, %v", me, err)
	}

	// OAuth client and callback URLs.
	id, err := c.CreateOAuthClient(ctx, psp)
	if err != nil {
		t.Fatal(err)
	}
	cbID, err := c.CreateCallbackURL(ctx, psp, id, "https://tpp.example/a")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateCallbackURL(ctx, psp, id, cbID, "https://tpp.example/b"); err != nil {
		t.Fatal(err)
	}
	cb, err := c.GetCallbackURL(ctx, psp, id, cbID)
	if err != nil || cb.URL != "https://tpp.example/b" {
		t.Fatalf("GetCallbackURL = %+v, %v", cb, err)
	}
	cb2, err := c.CreateCallbackURL(ctx, psp, id, "https://tpp.example/c")
	if err != nil {
		t.Fatal(err)
	}
	cbs, err := c.ListCallbackURLs(ctx, psp, id)
	if err != nil || len(cbs) != 2 {
		t.Fatalf("ListCallbackURLs = %+v, %v", cbs, err)
	}
	if err := c.DeleteCallbackURL(ctx, psp, id, cb2); err != nil {
		t.Fatal(err)
	}
	oc, err := c.GetOAuthClient(ctx, psp, id)
	if err != nil {
		t.Fatal(err)
	}
	if oc.ID != id || oc.ClientID == "" || oc.Secret == "" || len(oc.CallbackURL) != 1 || oc.CallbackURL[0].URL != "https://tpp.example/b" {
		t.Fatalf("OAuth client %+v", oc)
	}
	if strings.Contains(oc.String(), oc.Secret) {
		t.Fatal("OAuthClient.String prints the secret")
	}
	ocs, err := c.ListOAuthClients(ctx, psp)
	if err != nil || len(ocs) != 1 || ocs[0].ClientID != oc.ClientID {
		t.Fatalf("ListOAuthClients = %v, %v", ocs, err)
	}
	if err := c.UpdateOAuthClient(ctx, psp, id, "ACTIVE"); err != nil {
		t.Fatal(err)
	}

	// Notification filters.
	want := []psd2.NotificationFilter{
		{Category: psd2.CategoryOAuth, NotificationTarget: "https://tpp.example/bank/callbacks"},
		{Category: psd2.CategoryDraftPayment, NotificationTarget: "https://tpp.example/bank/callbacks"},
	}
	if _, err := c.CreateNotificationFilters(ctx, psp, want); err != nil {
		t.Fatal(err)
	}
	got, err := c.ListNotificationFilters(ctx, psp)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("notification filters %+v", got)
	}

	// PSP draft payments: created by the TPP, accepted by the payer.
	payer := env.Users(t)[0]
	req := psd2.PSPDraftPaymentRequest{SenderIBAN: payer.Accounts[0].IBAN, CounterpartyIBAN: "NL02ABNA0123456789",
		CounterpartyName: "Shop", Description: "order 1", Amount: psd2.Amount{Value: "12.34", Currency: "EUR"}}
	d1, err := c.CreatePSPDraftPayment(ctx, psp, req)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := c.CreatePSPDraftPayment(ctx, psp, req)
	if err != nil {
		t.Fatal(err)
	}
	env.AcceptPSPDraftPayment(t, d1)
	if err := c.UpdatePSPDraftPayment(ctx, psp, d2, psd2.StatusCancelled); err != nil {
		t.Fatal(err)
	}
	g1, err := c.GetPSPDraftPayment(ctx, psp, d1)
	if err != nil || g1.Status != psd2.StatusAccepted || g1.Amount.Value != "12.34" || g1.SenderIBAN != req.SenderIBAN {
		t.Fatalf("PSP draft %d = %+v, %v", d1, g1, err)
	}
	l, err := c.ListPSPDraftPayments(ctx, psp, psd2.Page{Count: 10})
	if err != nil || len(l.Items) != 2 {
		t.Fatalf("ListPSPDraftPayments = %+v, %v", l, err)
	}
	statuses := map[string]bool{}
	for _, d := range l.Items {
		statuses[d.Status] = true
	}
	if !statuses[psd2.StatusAccepted] || !statuses[psd2.StatusCancelled] {
		t.Fatalf("statuses %v", statuses)
	}
}

func TestOAuthContextPISPAndCBPII(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	ctx := context.Background()
	c := newClient(t, env, psd2.Options{})
	flow := registerTPP(t, ctx, c)
	user := env.Users(t)[0]
	uc, err := c.NewOAuthContext(ctx, flow.accessToken(t, env, user.ID), ctxOpts())
	if err != nil {
		t.Fatal(err)
	}
	if uc.UserType() != psd2.UserTypeAPIKey || uc.Kind() != psd2.KindOAuth || uc.UserID() == user.ID {
		t.Fatalf("OAuth context %v (granting user %d)", uc, user.ID)
	}
	me, err := c.GetUser(ctx, uc, uc.UserID())
	if err != nil || me.Type != psd2.UserTypeAPIKey || me.GrantedBy == nil || me.GrantedBy.ID != user.ID ||
		me.RequestedBy == nil || me.RequestedBy.Type != psd2.UserTypePaymentServiceProvider {
		t.Fatalf("UserApiKey = %+v, %v", me, err)
	}
	accs, err := c.ListMonetaryAccounts(ctx, uc, psd2.Page{})
	if err != nil || len(accs.Items) != len(user.Accounts) {
		t.Fatalf("accounts under OAuth = %+v, %v", accs, err)
	}
	acc := accs.Items[0]
	iban, name := acc.IBAN()

	// Confirmation of funds, both answers.
	yes, err := c.ConfirmFunds(ctx, uc, psd2.FundsRequest{PointerIBAN: psd2.IBANPointer(iban, name), Amount: psd2.Amount{Value: "0.01", Currency: "EUR"}})
	if err != nil || !yes {
		t.Fatalf("funds for 0.01 = %v, %v", yes, err)
	}
	no, err := c.ConfirmFunds(ctx, uc, psd2.FundsRequest{PointerIBAN: psd2.IBANPointer(iban, name), Amount: psd2.Amount{Value: "900000.00", Currency: "EUR"}})
	if err != nil || no {
		t.Fatalf("funds for 900000 = %v, %v", no, err)
	}

	// Draft payments: create, read, accept in the "app", see the payment.
	entry := psd2.DraftPaymentEntry{Amount: psd2.Amount{Value: "1.25", Currency: "EUR"},
		CounterpartyAlias: psd2.IBANPointer("NL02ABNA0123456789", "Shop"), Description: "draft 1"}
	did, err := c.CreateDraftPayment(ctx, uc, acc.ID, psd2.DraftPaymentRequest{Entries: []psd2.DraftPaymentEntry{entry}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.GetDraftPayment(ctx, uc, acc.ID, did)
	if err != nil || d.Status != psd2.StatusPending || len(d.Entries) != 1 || d.Entries[0].Amount.Value != "1.25" {
		t.Fatalf("draft = %+v, %v", d, err)
	}
	env.AcceptDraftPayment(t, did)
	d, err = c.GetDraftPayment(ctx, uc, acc.ID, did)
	if err != nil || d.Status != psd2.StatusAccepted {
		t.Fatalf("accepted draft = %+v, %v", d, err)
	}
	pid, ok := d.PaymentID()
	if !ok {
		t.Fatalf("accepted draft has no payment: %s", d.Object)
	}
	p, err := c.GetPayment(ctx, uc, acc.ID, pid)
	if err != nil || p.Amount.Value != "-1.25" || p.Description != "draft 1" {
		t.Fatalf("payment = %+v, %v", p, err)
	}
	// A second draft is cancelled by the TPP.
	did2, err := c.CreateDraftPayment(ctx, uc, acc.ID, psd2.DraftPaymentRequest{Entries: []psd2.DraftPaymentEntry{entry}})
	if err != nil {
		t.Fatal(err)
	}
	// The user accepts drafts in the app, never the TPP: the client
	// refuses before sending (the bank would answer 403).
	env.ResetStats(t)
	if err := c.UpdateDraftPayment(ctx, uc, acc.ID, did2, psd2.DraftPaymentUpdate{Status: psd2.StatusAccepted}); !errors.Is(err, psd2.ErrUserAcceptsDrafts) {
		t.Fatalf("accepting a draft as the TPP: %v", err)
	}
	for call, n := range env.Stats(t) {
		if strings.HasPrefix(call, "PUT ") && n > 0 {
			t.Fatalf("the refused accept reached the bank: %v", env.Stats(t))
		}
	}
	if err := c.UpdateDraftPayment(ctx, uc, acc.ID, did2, psd2.DraftPaymentUpdate{Status: psd2.StatusCancelled, Entries: []psd2.DraftPaymentEntry{entry}}); err != nil {
		t.Fatal(err)
	}
	drafts, err := c.ListDraftPayments(ctx, uc, acc.ID, psd2.Page{Count: 10})
	if err != nil || len(drafts.Items) != 2 || drafts.Items[0].ID != did2 || drafts.Items[0].Status != psd2.StatusCancelled {
		t.Fatalf("drafts = %+v, %v", drafts, err)
	}
	// A PISP's OAuth context moves money only through drafts the user
	// approves: a direct payment, even between the user's own accounts,
	// is refused with 403 and surfaces as an APIError.
	if len(accs.Items) > 1 {
		to, toName := accs.Items[1].IBAN()
		_, err := c.CreatePayment(ctx, uc, acc.ID, psd2.PaymentRequest{Amount: psd2.Amount{Value: "0.50", Currency: "EUR"},
			CounterpartyAlias: psd2.IBANPointer(to, toName), Description: "own transfer"})
		var ae *psd2.APIError
		if !errors.As(err, &ae) || ae.Status != 403 {
			t.Fatalf("direct payment under OAuth: %v, want a 403 APIError", err)
		}
	}
}

// paymentsAccount finds the seeded account with the long history.
func paymentsAccount(t *testing.T, ctx context.Context, c *psd2.Client, env *banktest.Env, min int) (*psd2.Context, int64) {
	t.Helper()
	for _, u := range env.Users(t) {
		bc, err := c.NewAPIKeyContext(ctx, u.APIKey, ctxOpts())
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range u.Accounts {
			l, err := c.ListPayments(ctx, bc, a.ID, psd2.Page{Count: 200})
			if err != nil {
				t.Fatal(err)
			}
			if len(l.Items) == 200 {
				return bc, a.ID
			}
		}
	}
	t.Fatalf("no account with %d payments", min)
	return nil, 0
}

func TestPagingThroughHistory(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	ctx := context.Background()
	c := newClient(t, env, psd2.Options{})
	bc, acc := paymentsAccount(t, ctx, c, env, 300)

	// The iterator walks from newest to oldest without gaps or repeats.
	var ids []int64
	for p, err := range c.AllPayments(ctx, bc, acc, 200) {
		if err != nil {
			t.Fatal(err)
		}
		if p.MonetaryAccountID != 0 && p.MonetaryAccountID != acc {
			t.Fatalf("payment %d of account %d", p.ID, p.MonetaryAccountID)
		}
		ids = append(ids, p.ID)
	}
	if len(ids) < 300 {
		t.Fatalf("iterator yielded %d payments, want >= 300", len(ids))
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] >= ids[i-1] {
			t.Fatalf("ids not strictly descending at %d: %d then %d", i, ids[i-1], ids[i])
		}
	}
	// Stopping early stops fetching.
	n := 0
	for range c.AllPayments(ctx, bc, acc, 10) {
		if n++; n == 15 {
			break
		}
	}

	// Older direction by hand, small pages.
	var older []int64
	page := psd2.Page{Count: 37}
	for {
		l, err := c.ListPayments(ctx, bc, acc, page)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range l.Items {
			older = append(older, p.ID)
		}
		next, ok := l.Pagination.Older()
		if !ok {
			break
		}
		if next.OlderID != l.Items[len(l.Items)-1].ID {
			t.Fatalf("older_id %d is not the smallest id on the page (%d)", next.OlderID, l.Items[len(l.Items)-1].ID)
		}
		page = next
	}
	if !equalIDs(older, ids) {
		t.Fatalf("older-direction paging gave %d ids, iterator %d", len(older), len(ids))
	}

	// Newer direction: from the oldest page up to the newest.
	oldest := ids[len(ids)-1]
	l, err := c.ListPayments(ctx, bc, acc, psd2.Page{Count: 37, NewerID: oldest - 1})
	if err != nil {
		t.Fatal(err)
	}
	var newer []int64
	for {
		// Pages are newest first; prepend each page to keep descending order.
		pageIDs := make([]int64, 0, len(l.Items))
		for _, p := range l.Items {
			pageIDs = append(pageIDs, p.ID)
		}
		newer = append(pageIDs, newer...)
		next, ok := l.Pagination.Newer()
		if !ok {
			break
		}
		if l, err = c.ListPayments(ctx, bc, acc, next); err != nil {
			t.Fatal(err)
		}
		if len(l.Items) == 0 {
			break
		}
	}
	if !equalIDs(newer, ids) {
		t.Fatalf("newer-direction paging gave %d ids (first %v), want %d", len(newer), newer[:min(5, len(newer))], len(ids))
	}
}

func equalIDs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSessionRenewalSingleFlight(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	env := banktest.Start(t, banktest.WithClock(clk.Now))
	ctx := context.Background()
	var renewals atomic.Int32
	c := newClient(t, env, psd2.Options{Clock: clk, OnRenew: func(_ context.Context, bc *psd2.Context) error {
		renewals.Add(1)
		return nil
	}})
	bc, err := c.NewAPIKeyContext(ctx, env.Users(t)[0].APIKey, ctxOpts())
	if err != nil {
		t.Fatal(err)
	}
	first := bc.SessionID()

	concurrent := func(what string) {
		t.Helper()
		env.ResetStats(t)
		var wg sync.WaitGroup
		errs := make(chan error, 50)
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := c.ListMonetaryAccounts(ctx, bc, psd2.Page{}); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("%s: %v", what, err)
		}
		if n := env.Stats(t)["POST /v1/session-server"]; n != 1 {
			t.Fatalf("%s: %d session-server calls for 50 concurrent calls, want exactly 1", what, n)
		}
	}

	// 1. Both clocks moved: the client sees the expiry itself.
	clk.Advance(time.Until(bc.SessionExpiry()) + 2*time.Hour)
	clk.Advance(bc.SessionExpiry().Sub(clk.Now()) + time.Second)
	concurrent("client-side expiry")
	if bc.SessionID() == first || renewals.Load() != 1 {
		t.Fatalf("session %d (was %d), %d OnRenew calls", bc.SessionID(), first, renewals.Load())
	}

	// 2. Only the bank's clock moved: the bank answers "Insufficient
	// authorisation." and the calls renew once and retry.
	env.AdvanceClock(t, bc.SessionExpiry().Sub(clk.Now())+time.Minute)
	concurrent("bank-side expiry")
	if renewals.Load() != 2 {
		t.Fatalf("%d OnRenew calls, want 2", renewals.Load())
	}

	// 3. The bank kills the session (fault): one renewal, the call succeeds.
	env.ResetStats(t)
	env.Fault(t, banktest.Fault{Method: "GET", Path: "/v1/user/*/monetary-account", Kind: banktest.FaultExpireSession, Count: 1})
	if _, err := c.ListMonetaryAccounts(ctx, bc, psd2.Page{}); err != nil {
		t.Fatal(err)
	}
	if n := env.Stats(t)["POST /v1/session-server"]; n != 1 {
		t.Fatalf("expire_session fault: %d session-server calls", n)
	}

	// 4. Closing the session: the next call opens a new one.
	if err := c.CloseSession(ctx, bc); err != nil {
		t.Fatal(err)
	}
	if bc.HasSession() {
		t.Fatal("session kept after CloseSession")
	}
	if _, err := c.ListUsers(ctx, bc); err != nil {
		t.Fatal(err)
	}
}

func TestRateLimitsRespected(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t, banktest.WithRateLimits())
	ctx := context.Background()
	var statuses sync.Map
	// The real MemoryBudget, no retries: a 429 would surface.
	c := newClient(t, env, psd2.Options{Budget: psd2.NewMemoryBudget(nil), MaxAttempts: 1, OnCall: func(ci psd2.CallInfo) {
		v, _ := statuses.LoadOrStore(ci.Status, new(atomic.Int32))
		v.(*atomic.Int32).Add(1)
	}})
	u := env.Users(t)[0]
	bc, err := c.NewAPIKeyContext(ctx, u.APIKey, ctxOpts())
	if err != nil {
		t.Fatal(err)
	}
	calls := []func() error{
		func() error { _, err := c.ListUsers(ctx, bc); return err },
		func() error { _, err := c.GetUser(ctx, bc, u.ID); return err },
		func() error { _, err := c.ListMonetaryAccounts(ctx, bc, psd2.Page{}); return err },
		func() error { _, err := c.GetMonetaryAccount(ctx, bc, u.Accounts[0].ID); return err },
		func() error { _, err := c.ListPayments(ctx, bc, u.Accounts[0].ID, psd2.Page{Count: 5}); return err },
	}
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := calls[i%len(calls)](); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if v, ok := statuses.Load(429); ok {
		t.Fatalf("%d answers were 429", v.(*atomic.Int32).Load())
	}
	// 4 calls per GET endpoint at 3 per 3 s: the budget had to wait.
	if d := time.Since(start); d < 3*time.Second {
		t.Fatalf("20 calls took %v: the budget did not hold them back", d)
	}
}

func TestRetries(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	ctx := context.Background()
	c := newClient(t, env, psd2.Options{MaxAttempts: 3})
	flow := registerTPP(t, ctx, c)
	user := env.Users(t)[0]
	uc, err := c.NewOAuthContext(ctx, flow.accessToken(t, env, user.ID), ctxOpts())
	if err != nil {
		t.Fatal(err)
	}
	acc := user.Accounts[0].ID
	listPath := "/v1/user/*/monetary-account/*/payment"
	const listKey = "GET /v1/user/{id}/monetary-account/{id}/payment"

	for _, status := range []int{429, 500, 503} {
		env.ResetStats(t)
		env.Fault(t, banktest.Fault{Method: "GET", Path: listPath, Kind: banktest.FaultStatus, Status: status, Count: 2})
		if _, err := c.ListPayments(ctx, uc, acc, psd2.Page{Count: 1}); err != nil {
			t.Fatalf("GET after 2×%d: %v", status, err)
		}
		if n := env.Stats(t)[listKey]; n != 3 {
			t.Fatalf("status %d: %d GETs, want 3", status, n)
		}
	}
	// Attempts are capped.
	env.ResetStats(t)
	env.Fault(t, banktest.Fault{Method: "GET", Path: listPath, Kind: banktest.FaultStatus, Status: 500, Count: 10})
	_, err = c.ListPayments(ctx, uc, acc, psd2.Page{Count: 1})
	var apiErr *psd2.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 500 || !errors.Is(err, psd2.ErrServer) || apiErr.ResponseID == "" || apiErr.RequestID == "" {
		t.Fatalf("err = %v", err)
	}
	if n := env.Stats(t)[listKey]; n != 3 {
		t.Fatalf("%d GETs with MaxAttempts 3", n)
	}
	env.ClearFaults(t)

	// A payment POST is never retried.
	draft := psd2.DraftPaymentRequest{Entries: []psd2.DraftPaymentEntry{{Amount: psd2.Amount{Value: "1.00", Currency: "EUR"},
		CounterpartyAlias: psd2.IBANPointer("NL02ABNA0123456789", "Shop"), Description: "x"}}}
	const draftKey = "POST /v1/user/{id}/monetary-account/{id}/draft-payment"
	for _, status := range []int{429, 503} {
		env.ResetStats(t)
		env.Fault(t, banktest.Fault{Method: "POST", Path: "/v1/user/*/monetary-account/*/draft-payment", Kind: banktest.FaultStatus, Status: status, Count: 1})
		if _, err := c.CreateDraftPayment(ctx, uc, acc, draft); err == nil {
			t.Fatalf("draft payment after %d succeeded: was it retried?", status)
		}
		if n := env.Stats(t)[draftKey]; n != 1 {
			t.Fatalf("status %d: %d draft-payment POSTs, want 1", status, n)
		}
	}
	// Sent but no answer: ambiguous, not retried, distinguishable.
	env.ResetStats(t)
	env.Fault(t, banktest.Fault{Method: "POST", Path: "/v1/user/*/monetary-account/*/draft-payment", Kind: banktest.FaultDrop, Count: 1})
	_, err = c.CreateDraftPayment(ctx, uc, acc, draft)
	var tErr *psd2.TransportError
	if !errors.As(err, &tErr) || !tErr.Ambiguous() || tErr.RequestID == "" {
		t.Fatalf("dropped draft payment: %v", err)
	}
	if n := env.Stats(t)[draftKey]; n != 1 {
		t.Fatalf("dropped POST sent %d times", n)
	}
	// The drop happened after the bank applied it: the draft exists.
	l, err := c.ListDraftPayments(ctx, uc, acc, psd2.Page{Count: 10})
	if err != nil || len(l.Items) != 1 {
		t.Fatalf("after a dropped answer the bank holds %d drafts (%v), want 1", len(l.Items), err)
	}
	// A GET with a dropped answer is retried.
	env.ResetStats(t)
	env.Fault(t, banktest.Fault{Method: "GET", Path: listPath, Kind: banktest.FaultDrop, Count: 1})
	if _, err := c.ListPayments(ctx, uc, acc, psd2.Page{Count: 1}); err != nil {
		t.Fatalf("GET after a drop: %v", err)
	}
}

// Go's transport re-sends an idempotent request on its own when a reused
// connection drops; the bank then sees more requests than the client's
// budget and attempt count. Every request the bank sees must be an attempt
// the client counted.
func TestTransportDoesNotRetryOnItsOwn(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	ctx := context.Background()
	var attempts atomic.Int32
	c := newClient(t, env, psd2.Options{MaxAttempts: 1, OnCall: func(psd2.CallInfo) { attempts.Add(1) }})
	u := env.Users(t)[0]
	bc, err := c.NewAPIKeyContext(ctx, u.APIKey, ctxOpts())
	if err != nil {
		t.Fatal(err)
	}
	const path, key = "/v1/user/*/monetary-account", "GET /v1/user/{id}/monetary-account"
	// A first call leaves a kept-alive connection for the next to reuse.
	if _, err := c.ListMonetaryAccounts(ctx, bc, psd2.Page{}); err != nil {
		t.Fatal(err)
	}
	env.ResetStats(t)
	attempts.Store(0)
	env.Fault(t, banktest.Fault{Method: "GET", Path: path, Kind: banktest.FaultDrop, Count: 1})
	_, err = c.ListMonetaryAccounts(ctx, bc, psd2.Page{})
	var tErr *psd2.TransportError
	if !errors.As(err, &tErr) {
		t.Errorf("a dropped GET with MaxAttempts 1: %v, want a TransportError", err)
	}
	if bank, ours := env.Stats(t)[key], int(attempts.Load()); bank != ours || bank != 1 {
		t.Fatalf("the bank saw %d GETs, the client counted %d attempts", bank, ours)
	}
}

// The session must be renewed again soon after the last session-server
// call (a renewal that failed, or a session that expired again): bunq
// allows one per 30 s, so the request answers at once with
// RenewalThrottledError and when to retry, instead of waiting up to 30 s,
// and nothing more is sent to the bank.
func TestRenewalTooSoonAnswersAtOnce(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	ctx := context.Background()
	c := newClient(t, env, psd2.Options{Budget: psd2.NewMemoryBudget(nil), MaxAttempts: 1})
	bc, err := c.NewAPIKeyContext(ctx, env.Users(t)[0].APIKey, ctxOpts()) // opens a session
	if err != nil {
		t.Fatal(err)
	}
	env.ResetStats(t)
	env.Fault(t, banktest.Fault{Method: "GET", Path: "/v1/user/*/monetary-account", Kind: banktest.FaultExpireSession, Count: 1})
	_, err = c.ListMonetaryAccounts(ctx, bc, psd2.Page{})
	var rt *psd2.RenewalThrottledError
	if !errors.As(err, &rt) || rt.RetryAfter <= psd2.DefaultRenewalWait || rt.RetryAfter > psd2.SessionRateWindow+time.Second {
		t.Fatalf("renewal within 30 s of the last: %v", err)
	}
	if n := env.Stats(t)["POST /v1/session-server"]; n != 0 {
		t.Fatalf("%d session-server calls sent although the budget had none left", n)
	}
}

func TestServerSignatureRequired(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	ctx := context.Background()
	c := newClient(t, env, psd2.Options{})
	bc, err := c.NewAPIKeyContext(ctx, env.Users(t)[0].APIKey, ctxOpts())
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{banktest.FaultBadSignature, banktest.FaultNoSignature} {
		env.Fault(t, banktest.Fault{Method: "GET", Path: "/v1/user/*/monetary-account", Kind: kind, Count: 1})
		l, err := c.ListMonetaryAccounts(ctx, bc, psd2.Page{})
		var sErr *psd2.SignatureError
		if !errors.Is(err, psd2.ErrBadServerSignature) || !errors.As(err, &sErr) || l != nil {
			t.Fatalf("%s: listing %v, err %v", kind, l, err)
		}
		if sErr.Missing != (kind == banktest.FaultNoSignature) || sErr.ResponseID == "" {
			t.Fatalf("%s: %+v", kind, sErr)
		}
	}
	// Then the bank is trusted again.
	if _, err := c.ListMonetaryAccounts(ctx, bc, psd2.Page{}); err != nil {
		t.Fatal(err)
	}
}

func TestTypedErrors(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	ctx := context.Background()
	var infos []psd2.CallInfo
	var mu sync.Mutex
	c := newClient(t, env, psd2.Options{MaxAttempts: 1, OnCall: func(ci psd2.CallInfo) { mu.Lock(); infos = append(infos, ci); mu.Unlock() }})
	bc, err := c.NewAPIKeyContext(ctx, env.Users(t)[0].APIKey, ctxOpts())
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetMonetaryAccount(ctx, bc, 987654321)
	var apiErr *psd2.APIError
	if !errors.Is(err, psd2.ErrNotFound) || !errors.As(err, &apiErr) || len(apiErr.Descriptions) == 0 || apiErr.ResponseID == "" {
		t.Fatalf("unknown account: %v", err)
	}
	mu.Lock()
	last := infos[len(infos)-1]
	mu.Unlock()
	if last.Status != 404 || last.RequestID != apiErr.RequestID || last.ResponseID != apiErr.ResponseID {
		t.Fatalf("CallInfo %+v vs error ids %s/%s", last, apiErr.RequestID, apiErr.ResponseID)
	}
	for status, want := range map[int]error{491: psd2.ErrMaintenance, 466: psd2.ErrSignatureRequired, 401: psd2.ErrUnauthorized, 400: psd2.ErrBadRequest} {
		// A 401 renews the session and tries once more: refuse both tries.
		env.Fault(t, banktest.Fault{Method: "GET", Path: "/v1/user", Kind: banktest.FaultStatus, Status: status, Count: 2})
		_, err := c.ListUsers(ctx, bc)
		env.ClearFaults(t)
		if !errors.Is(err, want) {
			t.Fatalf("status %d: %v, want %v", status, err, want)
		}
	}
	// Bad API key.
	if _, err := c.NewAPIKeyContext(ctx, "sandbox_0000", ctxOpts()); !errors.As(err, &apiErr) {
		t.Fatalf("bad API key: %v", err)
	}
}

func TestContextPersistence(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	ctx := context.Background()
	c := newClient(t, env, psd2.Options{})
	bc, err := c.NewAPIKeyContext(ctx, env.Users(t)[0].APIKey, ctxOpts())
	if err != nil {
		t.Fatal(err)
	}
	b1, err := json.Marshal(bc)
	if err != nil {
		t.Fatal(err)
	}
	restored := new(psd2.Context)
	if err := json.Unmarshal(b1, restored); err != nil {
		t.Fatal(err)
	}
	b2, _ := json.Marshal(restored)
	if string(b1) != string(b2) {
		t.Fatalf("round trip differs:\n%s\n%s", b1, b2)
	}
	kr, err := seal.NewKeyring(seal.Key{ID: "k1", Key: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := bc.Seal(kr, []byte("ctx:1"))
	if err != nil {
		t.Fatal(err)
	}
	opened, err := psd2.OpenContext(kr, sealed, []byte("ctx:1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := psd2.OpenContext(kr, sealed, []byte("ctx:2")); err == nil {
		t.Fatal("opened a context sealed for another owner")
	}
	// The restored context works without a new session.
	env.ResetStats(t)
	for _, x := range []*psd2.Context{restored, opened} {
		if _, err := c.ListMonetaryAccounts(ctx, x, psd2.Page{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := env.Stats(t)["POST /v1/session-server"]; n != 0 {
		t.Fatalf("restored context opened %d sessions", n)
	}
}

func TestInjectedKeyIsUsed(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	c := newClient(t, env, psd2.Options{})
	called := 0
	key, _ := poolKey()
	bc, err := c.NewAPIKeyContext(context.Background(), env.Users(t)[0].APIKey, psd2.ContextOptions{KeySource: func() (*rsa.PrivateKey, error) {
		called++
		return key, nil
	}})
	if err != nil || called != 1 {
		t.Fatalf("KeySource called %d times: %v", called, err)
	}
	b, _ := json.Marshal(bc)
	var j struct {
		Installation struct {
			ClientPrivateKey string `json:"client_private_key"`
		} `json:"installation"`
	}
	_ = json.Unmarshal(b, &j)
	block, _ := pem.Decode([]byte(j.Installation.ClientPrivateKey))
	if block == nil {
		t.Fatal("no private key in context")
	}
	stored, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil || !key.Equal(stored) {
		t.Fatalf("context holds another key than the injected one: %v", err)
	}
	if _, err := c.NewAPIKeyContext(context.Background(), "x", psd2.ContextOptions{KeySource: func() (*rsa.PrivateKey, error) {
		return nil, errors.New("pool empty")
	}}); err == nil || !strings.Contains(err.Error(), "pool empty") {
		t.Fatalf("KeySource error lost: %v", err)
	}
}

type budgetCall struct {
	key    string
	limit  int
	window time.Duration
}

// recordingBudget admits everything and remembers what it was asked.
type recordingBudget struct {
	mu    sync.Mutex
	calls []budgetCall
}

func (b *recordingBudget) Wait(ctx context.Context, key string, limit int, window time.Duration) error {
	b.mu.Lock()
	b.calls = append(b.calls, budgetCall{key, limit, window})
	b.mu.Unlock()
	return ctx.Err()
}

func TestBudgetKeysAndLimits(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	ctx := context.Background()
	b := &recordingBudget{}
	c := newClient(t, env, psd2.Options{Budget: b, RateMargin: -1})
	u := env.Users(t)[0]
	bc, err := c.NewAPIKeyContext(ctx, u.APIKey, ctxOpts())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetMonetaryAccount(ctx, bc, u.Accounts[0].ID); err != nil {
		t.Fatal(err)
	}
	flow := registerTPP(t, ctx, c)
	if err := c.UpdateOAuthClient(ctx, flow.psp, flow.oauthID, "ACTIVE"); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseSession(ctx, bc); err != nil {
		t.Fatal(err)
	}
	want := map[string]budgetCall{
		"POST /installation":                   {limit: 5, window: 3 * time.Second},
		"POST /session-server":                 {limit: 1, window: 30 * time.Second},
		"GET /user/{id}/monetary-account/{id}": {limit: 3, window: 3 * time.Second},
		"PUT /user/{id}/oauth-client/{id}":     {limit: 2, window: 3 * time.Second},
		"DELETE /session/0":                    {limit: 2, window: 3 * time.Second},
	}
	ids := map[string]bool{}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, call := range b.calls {
		id, endpoint, _ := strings.Cut(call.key, " ")
		ids[id] = true
		// Fold ids for the comparison only.
		parts := strings.Split(endpoint, "/")
		for i, p := range parts {
			if p != "" && p != "0" && strings.Trim(p, "0123456789") == "" {
				parts[i] = "{id}"
			}
		}
		if w, ok := want[strings.Join(parts, "/")]; ok {
			if call.limit != w.limit || call.window != w.window {
				t.Errorf("%s: limit %d per %v, want %d per %v", call.key, call.limit, call.window, w.limit, w.window)
			}
			delete(want, strings.Join(parts, "/"))
		}
	}
	if len(want) > 0 {
		t.Errorf("never asked the budget for %v", want)
	}
	// One id for calls before an installation, one per context (bc, psp);
	// with Options.SharedEgress device-server and session-server share
	// "egress" (TestSharedEgressBudget).
	if len(ids) != 3 || !ids["-"] {
		t.Errorf("budget ids %v", ids)
	}
}

// TestSharedEgressBudget: bunq limits session-server (1 per 30 s) and
// device-server per source IP, so with SharedEgress every context's calls
// to them take from one budget key.
func TestSharedEgressBudget(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	ctx := context.Background()
	b := &recordingBudget{}
	c := newClient(t, env, psd2.Options{Budget: b, RateMargin: -1, SharedEgress: true})
	for _, u := range env.Users(t)[:2] {
		if _, err := c.NewAPIKeyContext(ctx, u.APIKey, ctxOpts()); err != nil {
			t.Fatal(err)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, call := range b.calls {
		if strings.HasSuffix(call.key, " POST /session-server") || strings.HasSuffix(call.key, " POST /device-server") {
			n++
			if !strings.HasPrefix(call.key, "egress ") {
				t.Errorf("budget key %q, want the shared egress key", call.key)
			}
		}
	}
	if n != 4 {
		t.Fatalf("%d context creation calls asked the budget, want 4", n)
	}
}

// TestBare401RenewsTheSession: bunq's status table says 401 means "token or
// signature provided is not valid": a 401 without bunq's "Insufficient
// authorisation." text renews the session once and the call goes through.
func TestBare401RenewsTheSession(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t)
	ctx := context.Background()
	var renewals atomic.Int32
	c := newClient(t, env, psd2.Options{OnRenew: func(context.Context, *psd2.Context) error { renewals.Add(1); return nil }})
	u := env.Users(t)[0]
	bc, err := c.NewAPIKeyContext(ctx, u.APIKey, ctxOpts())
	if err != nil {
		t.Fatal(err)
	}
	env.Fault(t, banktest.Fault{Method: "GET", Path: "/v1/user/*/monetary-account/*", Kind: banktest.FaultStatus, Status: 401, Count: 1})
	if _, err := c.GetMonetaryAccount(ctx, bc, u.Accounts[0].ID); err != nil {
		t.Fatalf("after a bare 401: %v", err)
	}
	if renewals.Load() != 1 {
		t.Fatalf("renewals %d, want 1", renewals.Load())
	}
}

// The client's session expiry follows the session_timeout the bank answers:
// a PSD2 key's first session an hour, later ones the PSP's auto-logout
// setting, whatever it is (reference §3.1, §3.2).
func TestSessionExpiryFollowsTheAnsweredTimeout(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	env := banktest.Start(t, banktest.WithClock(clk.Now))
	ctx := context.Background()
	c := newClient(t, env, psd2.Options{Clock: clk})
	psp, err := c.NewPSD2Context(ctx, testCert(t, "Test TPP AISP PISP"), ctxOpts())
	if err != nil {
		t.Fatal(err)
	}
	if got := psp.SessionExpiry().Sub(clk.Now()); got != time.Hour {
		t.Fatalf("first PSD2 session expires in %v, want 1h", got)
	}
	for _, seconds := range []int{7200, 86400} {
		env.SetSessionTimeout(t, psp.UserID(), seconds)
		clk.Advance(psp.SessionExpiry().Sub(clk.Now()) + time.Second)
		if _, err := c.GetUser(ctx, psp, psp.UserID()); err != nil {
			t.Fatal(err)
		}
		if got, want := psp.SessionExpiry().Sub(clk.Now()), time.Duration(seconds)*time.Second; got != want {
			t.Fatalf("session with session_timeout %d expires in %v, want %v", seconds, got, want)
		}
	}
}

// TestClientAcceptsNullEmptyObjects: real payloads carry null for empty
// object fields (permitted_device, responses, object, merchant_reference);
// the client reads them as absent (reference §12.8).
func TestClientAcceptsNullEmptyObjects(t *testing.T) {
	t.Parallel()
	env := banktest.Start(t, banktest.WithNullObjects())
	ctx := context.Background()
	c := newClient(t, env, psd2.Options{})
	flow := registerTPP(t, ctx, c) // the credential answer has permitted_device null
	user := env.Users(t)[0]
	uc, err := c.NewOAuthContext(ctx, flow.accessToken(t, env, user.ID), ctxOpts())
	if err != nil {
		t.Fatal(err)
	}
	acc := user.Accounts[0]
	entry := psd2.DraftPaymentEntry{Amount: psd2.Amount{Value: "2.50", Currency: "EUR"},
		CounterpartyAlias: psd2.IBANPointer("NL02ABNA0123456789", "Shop"), Description: "nulls"}
	did, err := c.CreateDraftPayment(ctx, uc, acc.ID, psd2.DraftPaymentRequest{Entries: []psd2.DraftPaymentEntry{entry}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.GetDraftPayment(ctx, uc, acc.ID, did)
	if err != nil || d.Status != psd2.StatusPending || len(d.Responses) != 0 || len(d.Entries) != 1 || d.Entries[0].MerchantReference != "" {
		t.Fatalf("pending draft with nulls = %+v, %v", d, err)
	}
	if id, ok := d.PaymentID(); ok {
		t.Fatalf("a null object read as payment %d", id)
	}
	l, err := c.ListDraftPayments(ctx, uc, acc.ID, psd2.Page{})
	if err != nil || len(l.Items) == 0 {
		t.Fatalf("draft list with nulls = %+v, %v", l, err)
	}
	env.AcceptDraftPayment(t, did)
	if d, err = c.GetDraftPayment(ctx, uc, acc.ID, did); err != nil || d.Status != psd2.StatusAccepted {
		t.Fatalf("accepted draft = %+v, %v", d, err)
	}
	if _, ok := d.PaymentID(); !ok {
		t.Fatalf("accepted draft has no payment: %s", d.Object)
	}
}
