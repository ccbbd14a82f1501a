package pisp_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/api"
	"github.com/bunqtpp/tpp/bankctx"
	"github.com/bunqtpp/tpp/bankctx/bankctxtest"
	"github.com/bunqtpp/tpp/consent"
	"github.com/bunqtpp/tpp/internal/apitest"
	"github.com/bunqtpp/tpp/internal/banktest"
	"github.com/bunqtpp/tpp/internal/stacktest"
	"github.com/bunqtpp/tpp/notify"
	"github.com/bunqtpp/tpp/oauth"
	"github.com/bunqtpp/tpp/pisp"
	"github.com/bunqtpp/tpp/psd2"
	"github.com/bunqtpp/tpp/sqlite"
	"github.com/bunqtpp/tpp/web"
)

func init() { gin.SetMode(gin.TestMode) }

const returnURL0 = stacktest.ReturnURL

// harness is the whole payment stack on real components: the emulated bank
// over HTTP, a real redis-server, a SQLite file, the OAuth flow and our gin
// routes on an httptest server. Every API response is validated against
// the OpenAPI document. The clock is frozen for the services; the bank
// client keeps the wall clock (its sessions live at the emulator).
type harness struct {
	t        *testing.T
	stack    *stacktest.Stack
	clock    *stacktest.Clock
	env      *banktest.Env
	bank     *bankctxtest.TPP
	bc       *psd2.Client
	db       *sqlite.DB
	consents *sqlite.ConsentService
	payments *sqlite.PaymentService
	clients  *sqlite.ClientService
	provider *bankctx.Provider
	gate     *consent.Gate
	oauth    *oauth.Service
	svc      *pisp.Service
	srv      *httptest.Server
	http     *http.Client // validating transport
	v        *apitest.Validator
	client   *tpp.FintechClient
	apiKey   string
	logs     *stacktest.LogBuffer
}

type options struct {
	// noDraftCallbacks leaves out the DRAFT_PAYMENT notification filter:
	// callbacks are lost and only the poller sees changes.
	noDraftCallbacks bool
	// noCallbacks leaves out every notification filter (OAUTH too).
	noCallbacks  bool
	pollInterval time.Duration
	pollBatch    int
}

func newHarness(t *testing.T, o options) *harness {
	t.Helper()
	so := stacktest.Options{
		LogLevel: slog.LevelDebug, CallbackPath: oauth.CallbackPath, NotifyPath: "/bank/callbacks",
		PSD2: func(po *psd2.Options) {
			po.Budget, po.RetryBase, po.RetryMax = stacktest.Unlimited{}, 5*time.Millisecond, 20*time.Millisecond
		},
	}
	if o.noCallbacks {
		so.NotifyPath = ""
	}
	if o.noDraftCallbacks {
		// Nor in the consents' contexts (bankctx registers one per consent).
		so.Contexts = func(c *bankctx.Config) { c.NotifyURL = "" }
	}
	s := stacktest.New(t, so)
	h := &harness{t: t, stack: s, clock: s.Clock, env: s.Env, bank: s.Bank, bc: s.PSD2, db: s.DB,
		consents: s.Consents, payments: sqlite.NewPaymentService(s.DB), clients: s.Clients, provider: s.Provider,
		srv: s.Server, client: s.Client, apiKey: s.APIKey, logs: s.Logs}
	if !o.noDraftCallbacks && !o.noCallbacks {
		if _, err := h.bank.Client.CreateNotificationFilters(context.Background(), h.bank.Context, []psd2.NotificationFilter{
			{Category: psd2.CategoryOAuth, NotificationTarget: s.URL + "/bank/callbacks"},
			{Category: psd2.CategoryDraftPayment, NotificationTarget: s.URL + "/bank/callbacks"},
		}); err != nil {
			t.Fatal(err)
		}
	}

	// pisp takes part in the OAuth service's browser flow, so it is made
	// first, with the authorize URLs the service will serve; the callback
	// endpoint hands it DRAFT_PAYMENT notifications.
	var err error
	h.gate, err = consent.NewGate(consent.Config{
		Store: h.consents, BankContexts: h.provider, Clock: h.clock, Logger: s.Log,
		AuthorizeURL: oauth.AuthorizeURLs(s.URL),
	})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := pisp.New(pisp.Config{
		Payments: h.payments, Consents: h.consents, Idempotency: sqlite.NewIdempotencyStore(s.DB),
		Bank: h.bc, Contexts: h.provider, Gate: h.gate,
		TPP:          pisp.TPPContextFunc(func(context.Context) (*psd2.Context, error) { return h.bank.Context, nil }),
		AuthorizeURL: oauth.AuthorizeURLs(s.URL), Events: sqlite.NewOutbox(s.DB), PollInterval: o.pollInterval, PollBatch: o.pollBatch,
		Clock: h.clock, Logger: s.Log,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.svc = svc
	h.oauth, err = oauth.New(oauth.Config{
		PublicURL: s.URL, Clock: h.clock, Logger: s.Log,
		Bank:     oauth.BankOAuth{ClientID: h.bank.ClientID, ClientSecret: h.bank.ClientSecret, AuthURL: s.AuthURL(), TokenURL: s.TokenURL()},
		Consents: h.consents, Clients: h.clients, States: s.States(), BankContexts: h.provider, Deadlines: h.gate,
		Payments: svc,
	})
	if err != nil {
		t.Fatal(err)
	}
	callbacks, err := notify.New(notify.Config{Consents: h.consents, Grants: h.gate, Drafts: svc, Clock: h.clock, Logger: s.Log})
	if err != nil {
		t.Fatal(err)
	}

	pages, err := web.New("")
	if err != nil {
		t.Fatal(err)
	}
	od, err := oauth.NewHandler(h.oauth)
	if err != nil {
		t.Fatal(err)
	}
	flow, err := oauth.NewPages(h.oauth, pages)
	if err != nil {
		t.Fatal(err)
	}
	pd, err := pisp.NewHandler(svc)
	if err != nil {
		t.Fatal(err)
	}
	g := api.NewEngine(api.Options{Logger: s.Log})
	v1 := g.Group("/v1", api.Authenticate(h.clients))
	od.Register(v1)
	pd.Register(v1)
	flow.Register(&g.RouterGroup)
	callbacks.Register(&g.RouterGroup)
	s.Serve(g)

	h.v = apitest.NewValidator(t)
	h.http = stacktest.APIClient(t, h.v)
	return h
}

func (h *harness) newClient(name string) (*tpp.FintechClient, string) {
	h.t.Helper()
	return h.stack.NewClient(name, returnURL0)
}

// ---- API

type response struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func (r response) str(k string) string { s, _ := r.body[k].(string); return s }

// req calls the API with the harness client's key.
func (h *harness) req(method, path, body string, hdr map[string]string) response {
	h.t.Helper()
	return h.reqAs(h.apiKey, method, path, body, hdr)
}

func (h *harness) reqAs(key, method, path, body string, hdr map[string]string) response {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := h.http.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := response{status: res.StatusCode, header: res.Header, raw: raw}
	_ = json.Unmarshal(raw, &out.body)
	return out
}

func key(k string) map[string]string { return map[string]string{"Idempotency-Key": k} }

// ---- bank fixtures

// payer is the seeded person who authorizes consents; payee another
// seeded user whose account receives the money.
func (h *harness) payer() banktest.User { return bankctxtest.Person(h.t, h.env) }

func (h *harness) payee() banktest.Account {
	h.t.Helper()
	p := h.payer()
	for _, u := range h.env.Users(h.t) {
		if u.ID != p.ID && len(u.Accounts) > 0 {
			return u.Accounts[0]
		}
	}
	h.t.Fatal("no second user with an account")
	return banktest.Account{}
}

func (h *harness) account(id int64) banktest.Account {
	h.t.Helper()
	for _, u := range h.env.Users(h.t) {
		for _, a := range u.Accounts {
			if a.ID == id {
				return a
			}
		}
	}
	h.t.Fatalf("no account %d", id)
	return banktest.Account{}
}

func minor(t *testing.T, s string) int64 {
	t.Helper()
	v, err := tpp.ParseSignedMinor(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// paymentBody is a valid payment request from the payer's first account.
func (h *harness) paymentBody(amount, description string) string {
	h.t.Helper()
	to := h.payee()
	b, _ := json.Marshal(map[string]any{
		"account_id":   tpp.AccountID(h.payer().Accounts[0].ID),
		"amount":       map[string]string{"amount": amount, "currency": "EUR"},
		"counterparty": map[string]string{"iban": to.IBAN, "name": "Bakkerij de Korenschoof"},
		"description":  description,
		"reference":    "INV-1",
	})
	return string(b)
}

// bankContext is the consent's bank context, as the provider hands it out.
func (h *harness) bankContext(consentID string) *psd2.Context {
	h.t.Helper()
	bc, err := h.provider.Get(context.Background(), h.stack.Consent(consentID))
	if err != nil {
		h.t.Fatal(err)
	}
	return bc
}

// bankDraft reads a draft payment at the bank with the consent's context.
func (h *harness) bankDraft(consentID string, accountID, id int64) psd2.DraftPayment {
	h.t.Helper()
	d, err := h.bc.GetDraftPayment(context.Background(), h.bankContext(consentID), accountID, id)
	if err != nil {
		h.t.Fatal(err)
	}
	return d
}

// bankDraftsFor lists the drafts at the bank whose merchant reference is paymentID.
func (h *harness) bankDraftsFor(consentID string, accountID int64, paymentID string) int {
	h.t.Helper()
	l, err := h.bc.ListDraftPayments(context.Background(), h.bankContext(consentID), accountID, psd2.Page{Count: 200})
	if err != nil {
		h.t.Fatal(err)
	}
	n := 0
	for _, d := range l.Items {
		for _, e := range d.Entries {
			if e.MerchantReference == paymentID {
				n++
			}
		}
	}
	return n
}

const draftCreate = "POST /v1/user/{id}/monetary-account/{id}/draft-payment"
const draftList = "GET /v1/user/{id}/monetary-account/{id}/draft-payment"
const pspCreate = "POST /v1/user/{id}/payment-service-provider-draft-payment"

// ---- store

func (h *harness) payment(id string) *tpp.Payment {
	h.t.Helper()
	p, err := h.payments.PaymentByID(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

// waitStatus waits for a callback to move a payment.
func (h *harness) waitStatus(id string, want tpp.PaymentStatus) *tpp.Payment {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p := h.payment(id)
		if p.Status == want {
			return p
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("payment %s is %s, want %s\nlogs:\n%s", id, p.Status, want, h.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (h *harness) count(table string) int {
	h.t.Helper()
	var n int
	if err := h.db.GetContext(context.Background(), &n, `SELECT count(*) FROM `+table); err != nil {
		h.t.Fatal(err)
	}
	return n
}

// events returns the payment.updated payloads about a payment, oldest first,
// each checked against the document's WebhookEvent schema.
func (h *harness) events(paymentID string) []tpp.PaymentEventData {
	h.t.Helper()
	var rows []struct {
		ID      string `db:"id"`
		Payload string `db:"payload"`
	}
	if err := h.db.SelectContext(context.Background(), &rows,
		`SELECT id, payload FROM webhook_events WHERE type = 'payment.updated' AND payload LIKE '%' || ? || '%' ORDER BY created_at, rowid`, paymentID); err != nil {
		h.t.Fatal(err)
	}
	var out []tpp.PaymentEventData
	for _, r := range rows {
		hdr := http.Header{}
		hdr.Set("Content-Type", "application/json")
		hdr.Set("webhook-id", r.ID)
		hdr.Set("webhook-timestamp", "1795341600")
		hdr.Set("webhook-signature", "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=")
		h.v.CheckWebhook(h.t, hdr, []byte(r.Payload))
		var ev struct {
			Data tpp.PaymentEventData `json:"data"`
		}
		if err := json.Unmarshal([]byte(r.Payload), &ev); err != nil {
			h.t.Fatal(err)
		}
		out = append(out, ev.Data)
	}
	return out
}

// ---- consent flow (browser)

// authorize walks the user through the consent flow with a decision at
// bunq (approve or deny) and returns where the browser ends.
func (h *harness) authorize(authorizeURL, decision string) string {
	h.t.Helper()
	b := h.stack.NewBrowser()
	p := b.Get(h.stack.Decide(b.ToBank(authorizeURL), decision))
	if p.Status != http.StatusSeeOther {
		h.t.Fatalf("callback: %d %s", p.Status, p.Body)
	}
	return p.Location
}

// connect creates a consent with scopes for the given API key and has the
// payer approve it.
func (h *harness) connectAs(apiKey string, scopes ...string) string {
	h.t.Helper()
	if len(scopes) == 0 {
		scopes = []string{"payments"}
	}
	b, _ := json.Marshal(map[string]any{"user_ref": "u-1", "scopes": scopes, "return_url": returnURL0})
	r := h.reqAs(apiKey, "POST", "/v1/consents", string(b), nil)
	if r.status != 201 {
		h.t.Fatalf("create consent: %d %s", r.status, r.raw)
	}
	if to := h.authorize(r.str("authorize_url"), "approve"); !strings.Contains(to, "status=active") {
		h.t.Fatalf("consent not active: %s", to)
	}
	return r.str("id")
}

func (h *harness) connect(scopes ...string) string { return h.connectAs(h.apiKey, scopes...) }

// createPayment makes a draft payment and returns its API body.
func (h *harness) createPayment(consentID, idemKey, body string) response {
	h.t.Helper()
	r := h.req("POST", "/v1/consents/"+consentID+"/payments", body, key(idemKey))
	if r.status != 201 {
		h.t.Fatalf("create payment: %d %s\nlogs:\n%s", r.status, r.raw, h.logs.String())
	}
	return r
}

func bankID(t *testing.T, r response) int64 {
	t.Helper()
	// Decode the id from the raw body as an integer: a float64 would round
	// ids above 2^53.
	var v struct {
		ID json.Number `json:"bank_draft_id"`
	}
	_ = json.Unmarshal(r.raw, &v)
	n, err := v.ID.Int64()
	if err != nil || n <= 0 {
		t.Fatalf("no bank_draft_id in %s", r.raw)
	}
	return n
}
