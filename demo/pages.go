package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/bunqtpp/tpp"
)

// view is everything a page may show.
type view struct {
	Title      string
	ClientName string
	CSRF       string
	Flash      string     // a success or info line
	FlashKey   string     // which of flashes it is, so the script can retire it
	FlashInfo  bool       // news that is not a success (not approved, disconnected)
	Error      string     // a humane error line
	Message    string     // the error page's text
	Elsewhere  *elsewhere // a consent that came back here but is not this browser's
	BankAppURL string
	Status     int

	Consent      *Consent
	BankUser     string
	Disconnected bool

	Accounts      []*accountView
	Selected      *accountView
	SelectedID    string
	SelectedChart template.HTML // the labelled chart of the selected account
	Txs           []Transaction
	Filter        txFilter
	Payments      []Payment
	PaymentLabels map[string]string // payment id -> "€ 12.50 to Name", for the events
	Pending       *Payment          // the newest pending payment
	Refresh       string            // the dashboard, for the no-script refresh
	Reload        string            // the dashboard with fresh balances
	PayForm       payForm
	PayError      string
	Funds         *fundsResult
	FundsErr      string
	Events        []Event
}

// elsewhere is what the return page shows of a consent started outside
// this browser (with curl, say): its id and status, nothing of its owner.
type elsewhere struct {
	ID, Status, AccountsURL string
}

type accountView struct {
	Account
	Chart  template.HTML // a sparkline for the account's card
	points []Point
}

type txFilter struct {
	From, To, Cursor, Next string
}

type payForm struct {
	AccountID, Amount, IBAN, Name, Description, Key string
}

type fundsResult struct {
	Account    string
	Amount     Money
	Sufficient bool
	CheckedAt  time.Time
}

// flashes are the fixed texts a redirect may ask for by name, so that no
// text from the URL is ever shown.
var flashes = map[string]string{
	"connected":       "Your bunq account is connected.",
	"rejected":        "The connection was not approved at bunq. You can try again at any time.",
	"disconnected":    "You disconnected your bunq account. Demo Fintech can no longer see your accounts or prepare payments.",
	"payment_created": "Payment prepared. Approve it in the bunq app; its status here updates by itself.",
	"single_executed": "Your single payment was approved at bunq and has been made.",
	"single_pending":  "Your single payment is waiting at bunq. It is made once bunq has approved it.",
	"single_rejected": "You did not approve the single payment at bunq. No money moved.",
	"single_failed":   "bunq could not make the single payment. No money moved.",
	"single_other":    "Your single payment came back from bunq; it did not go through. No money moved.",
}

// infoFlashes are the flashes that report no success: shown neutral, not green.
var infoFlashes = map[string]bool{"rejected": true, "disconnected": true, "single_pending": true,
	"single_rejected": true, "single_failed": true, "single_other": true}

func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"money": fmtMoney,
		"when":  fmtTime,
		"clock": fmtClock,
		"neg":   func(s string) bool { return strings.HasPrefix(s, "-") },
	}
	out := map[string]*template.Template{}
	for _, name := range []string{"landing", "dashboard", "error", "elsewhere"} {
		t, err := template.New(name).Funcs(funcs).Option("missingkey=error").
			ParseFS(assets, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, err
		}
		out[name] = t
	}
	return out, nil
}

// fmtMoney shows "12.50" EUR as "€ 12.50" and "-12.50" as "−€ 12.50".
func fmtMoney(amount, currency string) string {
	sign := ""
	if strings.HasPrefix(amount, "-") {
		sign, amount = "−", amount[1:]
	}
	sym := currency + " "
	switch currency {
	case "EUR":
		sym = "€ "
	case "":
		sym = ""
	}
	return sign + sym + groupThousands(amount)
}

// groupThousands puts a comma between thousands of the whole part:
// "1234567.50" becomes "1,234,567.50". The decimal point stays a point, as
// in the amounts the forms take.
func groupThousands(amount string) string {
	whole, frac, hasFrac := strings.Cut(amount, ".")
	var b strings.Builder
	for i, r := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if hasFrac {
		b.WriteString("." + frac)
	}
	return b.String()
}

// normalAmount accepts an amount as people type it: "12,50" (a decimal
// comma, as in most of the euro area) and "1,250.00" or "1 250,00"
// (grouped thousands) become "12.50", "1250.00" and "1250.00". Anything
// else is passed on unchanged for the API to judge.
func normalAmount(s string) string {
	s = strings.ReplaceAll(strings.TrimSpace(s), " ", "")
	switch {
	case strings.Contains(s, ".") && strings.Contains(s, ","):
		if strings.LastIndex(s, ",") > strings.LastIndex(s, ".") { // 1.250,00
			s = strings.ReplaceAll(s, ".", "")
			return strings.Replace(s, ",", ".", 1)
		}
		return strings.ReplaceAll(s, ",", "") // 1,250.00
	case strings.Count(s, ",") == 1:
		if i := strings.Index(s, ","); len(s)-i-1 <= 2 { // 12,5 or 12,50: a decimal comma
			return s[:i] + "." + s[i+1:]
		}
		return strings.Replace(s, ",", "", 1) // 1,250: grouped thousands
	}
	return s
}

// fmtTime shows an RFC 3339 time briefly, in UTC.
func fmtTime(s string) string {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return s
	}
	return t.UTC().Format("2 Jan 2006 15:04")
}

// fmtClock shows the time of day of an RFC 3339 time, in UTC, as the
// events do: a status history is minutes long.
func fmtClock(s string) string {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return s
	}
	return t.UTC().Format("15:04:05")
}

func (a *App) base(user, title string) view {
	v := view{Title: title, ClientName: a.cfg.ClientName, BankAppURL: a.cfg.BankAppURL, Status: http.StatusOK}
	if user != "" {
		v.CSRF = a.csrf(user)
	}
	return v
}

// render writes a page. It renders into a buffer first, so a template
// error never leaves half a page.
func (a *App) render(w http.ResponseWriter, name string, v view) {
	var buf bytes.Buffer
	if err := a.pages[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		a.log.Error("demo: render page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	// Forms post to us only; the connect form redirects to the TPP's own
	// consent page (same origin), which takes the user on to bunq.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
	w.WriteHeader(v.Status)
	_, _ = w.Write(buf.Bytes())
}

// fail shows the error page: the message in its card, with a way back.
func (a *App) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	title := "Something went wrong"
	if status == http.StatusNotFound {
		title = "Page not found"
	}
	v := a.base("", title)
	v.Status, v.Message = status, msg
	a.render(w, "error", v)
}

// ---- dashboard

func (a *App) dashboard(w http.ResponseWriter, r *http.Request) {
	user := a.user(w, r, true)
	v := a.base(user, "Your money")
	q := r.URL.Query()
	if f, ok := flashes[q.Get("msg")]; ok {
		v.Flash, v.FlashKey, v.FlashInfo = f, q.Get("msg"), infoFlashes[q.Get("msg")]
	}
	v.Filter = txFilter{From: q.Get("from"), To: q.Get("to"), Cursor: q.Get("cursor")}
	a.show(w, r, user, &v, q.Get("account"), q.Get("fresh") == "1")
}

// show loads the user's consent and, when connected, the dashboard data,
// then renders the landing page or the dashboard. Parts that fail show a
// humane error; the rest of the page still shows.
func (a *App) show(w http.ResponseWriter, r *http.Request, user string, v *view, selected string, fresh bool) {
	ctx := r.Context()
	cur, all, err := a.currentConsent(ctx, user)
	if err != nil {
		v.Error = humane(err)
		a.render(w, "landing", *v)
		return
	}
	if cur == nil {
		v.Title = "Connect your bank"
		v.Disconnected = len(all) > 0 && all[0].Status == "revoked"
		if v.Disconnected && v.FlashKey == "disconnected" {
			v.Flash, v.FlashKey = "", "" // the page itself says so: once is enough
		}
		a.render(w, "landing", *v)
		return
	}
	v.Consent = cur
	if cur.BankUser != nil {
		v.BankUser = cur.BankUser.DisplayName
	}
	ids := map[string]bool{}
	for _, c := range all {
		ids[c.ID] = true
	}
	v.Events = a.events.forConsents(ids, 8)
	if err := a.load(ctx, r, v, selected, fresh); connectionEnded(err) {
		// The bank ended the connection (a restarted emulated bank forgets
		// its users): show the page of someone not connected, not
		// "Connected as …" beside "your connection has ended".
		nv := a.base(user, "Connect your bank")
		nv.Error = humane(err)
		a.render(w, "landing", nv)
		return
	}
	a.render(w, "dashboard", *v)
}

// connectionEnded reports whether err says the consent can no longer be used.
func connectionEnded(err error) bool {
	var p *Problem
	if !errors.As(err, &p) {
		return false
	}
	switch p.Code {
	case "consent_revoked", "consent_expired", "consent_not_active", "consent_not_found", "consent_reauth_required":
		return true
	}
	return false
}

const (
	chartTxs = 200 // transactions behind each chart (the API's page maximum)
	tableTxs = 10  // rows per page of the transactions table
)

// load fills the dashboard: accounts, a chart per account, a page of the
// selected account's transactions and the recent payments. Reads carry the
// browser's IP: the user is present.
// It returns the error of the accounts read, without which nothing shows.
func (a *App) load(ctx context.Context, r *http.Request, v *view, selected string, fresh bool) error {
	ip := clientIP(r)
	consentID := v.Consent.ID
	// Payments first: one that settled a moment ago moved money, so the
	// balances and transactions are read past the TPP's cache. This is
	// how the page without JavaScript, refreshing itself, shows the new
	// balance together with the new status.
	ps, perr := a.api.payments(ctx, consentID, 5)
	v.Payments = ps
	fresh = fresh || recentlySettled(ps, a.now(), settledFresh)
	accounts, err := a.api.accounts(ctx, consentID, attended(ip, fresh))
	if err != nil {
		v.Error = humane(err)
		return err
	}
	if perr != nil {
		v.Error = humane(perr) // the rest of the page still shows
	}
	for _, acc := range accounts {
		v.Accounts = append(v.Accounts, &accountView{Account: acc})
	}
	v.Selected = pick(v.Accounts, selected)
	if v.Selected != nil {
		v.SelectedID = v.Selected.ID
	}
	if v.PayForm.AccountID == "" && v.Selected != nil {
		v.PayForm.AccountID = v.Selected.ID
	}
	if v.PayForm.Key == "" {
		v.PayForm.Key = newIdempotencyKey()
	}
	a.loadTransactions(ctx, v, consentID, ip, fresh)
	labelPayments(v)
	setRefreshLinks(v)
	return nil
}

// loadTransactions reads, at most three at a time, each account's recent
// transactions for its chart and the selected account's page for the
// table. A failed read leaves its part empty and the page's first error.
func (a *App) loadTransactions(ctx context.Context, v *view, consentID, ip string, fresh bool) {
	var mu sync.Mutex
	firstErr := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if v.Error == "" {
			v.Error = humane(err)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(3)
	now := a.now()
	for _, av := range v.Accounts {
		g.Go(func() error {
			txs, _, err := a.api.transactions(gctx, consentID, av.ID, txQuery{Limit: chartTxs}, attended(ip, fresh))
			if err != nil {
				firstErr(err)
				return nil
			}
			pts, err := BalanceSeries(txs, av.Balance, now)
			if err != nil {
				a.log.Warn("demo: chart data", "err", err)
				pts = nil
			}
			av.points = pts
			av.Chart = Chart{ID: av.ID, Title: "Balance of " + label(av.Account), Currency: av.Currency, Points: pts, Compact: true}.SVG()
			return nil
		})
	}
	if v.Selected != nil {
		g.Go(func() error {
			from, to, msg := filterDates(v.Filter.From, v.Filter.To)
			if msg != "" {
				firstErr(&Problem{Code: "invalid_request", Detail: msg})
				return nil
			}
			txs, next, err := a.api.transactions(gctx, consentID, v.Selected.ID,
				txQuery{From: from, To: to, Cursor: v.Filter.Cursor, Limit: tableTxs}, attended(ip, fresh))
			if err != nil {
				firstErr(err)
				return nil
			}
			v.Txs, v.Filter.Next = txs, next
			return nil
		})
	}
	_ = g.Wait()
	if av := v.Selected; av != nil && av.Chart != "" {
		v.SelectedChart = Chart{ID: av.ID + "-big", Title: "Balance of " + label(av.Account) + " over time", Currency: av.Currency, Points: av.points}.SVG()
	}
}

// labelPayments names the recent payments for the page and finds the
// newest pending one.
func labelPayments(v *view) {
	v.PaymentLabels = map[string]string{}
	for i, p := range v.Payments {
		v.PaymentLabels[p.ID] = fmtMoney(p.Amount.Amount, p.Amount.Currency) + " to " + p.Counterparty.Name
		if p.Status == "pending" && v.Pending == nil {
			v.Pending = &v.Payments[i]
		}
	}
}

// setRefreshLinks sets where the page sends the browser to refresh.
// Without JavaScript a pending payment refreshes the dashboard (a GET,
// also after a form POST); the cache keeps that cheap. The link shown
// once a payment settles has fresh=1: balances and transactions are
// read past the TPP's short cache.
func setRefreshLinks(v *view) {
	rq := url.Values{}
	v.Refresh = BasePath + "/#payments"
	if v.Selected != nil {
		rq.Set("account", v.Selected.ID)
		v.Refresh = BasePath + "/?" + rq.Encode() + "#payments"
	}
	rq.Set("fresh", "1")
	v.Reload = BasePath + "/?" + rq.Encode()
}

// settledFresh is how long after a payment settled the dashboard reads
// balances fresh: longer than the TPP's account cache (30 s by default).
const settledFresh = 2 * time.Minute

// recentlySettled tells whether a payment left pending within d of now.
func recentlySettled(ps []Payment, now time.Time, d time.Duration) bool {
	for _, p := range ps {
		if !p.Final() {
			continue
		}
		at, err := time.Parse(time.RFC3339, p.UpdatedAt)
		if err == nil && now.Sub(at) < d {
			return true
		}
	}
	return false
}

// pick returns the account asked for, else the first active current
// account (what people mean by "my account"), else the first.
func pick(accounts []*accountView, id string) *accountView {
	for _, a := range accounts {
		if a.ID == id {
			return a
		}
	}
	for _, a := range accounts {
		if a.Type == "bank" && a.Status == "active" {
			return a
		}
	}
	if len(accounts) > 0 {
		return accounts[0]
	}
	return nil
}

func label(a Account) string {
	if a.Description != "" {
		return a.Description
	}
	return a.IBAN
}

// filterDates checks the date filter and turns "to" (a day) into the end
// of that day, which is what a person means by it.
func filterDates(from, to string) (string, string, string) {
	if from != "" {
		if _, err := time.Parse(time.DateOnly, from); err != nil {
			return "", "", "The start date is not a date."
		}
	}
	if to != "" {
		d, err := time.Parse(time.DateOnly, to)
		if err != nil {
			return "", "", "The end date is not a date."
		}
		if from != "" && from > to { // both YYYY-MM-DD: text order is date order
			return "", "", "The start date is after the end date. Pick a start date on or before the end date."
		}
		to = d.Add(24*time.Hour - time.Second).Format(time.RFC3339)
	}
	return from, to, ""
}

// ---- connect and return

func (a *App) connect(w http.ResponseWriter, r *http.Request) {
	user, ok := a.postUser(w, r)
	if !ok {
		return
	}
	c, err := a.api.createConsent(r.Context(), user, a.cfg.PublicURL+ReturnPath)
	if err != nil || c.AuthorizeURL == nil {
		if err == nil {
			err = &Problem{Code: "unexpected_answer", Detail: "the new consent has no authorize_url"}
		}
		v := a.base(user, "Connect your bank")
		v.Error, v.Status = humane(err), http.StatusBadGateway
		a.render(w, "landing", v)
		return
	}
	http.Redirect(w, r, *c.AuthorizeURL, http.StatusSeeOther)
}

// returned is the return_url: the browser comes back from the consent flow
// with consent_id and status. The status in the URL is only a hint; the
// consent is read from the API, and must be this browser's.
func (a *App) returned(w http.ResponseWriter, r *http.Request) {
	user := a.user(w, r, false)
	if pid := r.URL.Query().Get("payment_id"); pid != "" {
		a.singleReturned(w, r, user, pid)
		return
	}
	id := r.URL.Query().Get("consent_id")
	if id == "" {
		a.fail(w, r, http.StatusBadRequest, "This link is not complete. Go to the start page and connect again.")
		return
	}
	c, err := a.api.consent(r.Context(), id)
	if err != nil {
		a.fail(w, r, http.StatusBadGateway, humane(err))
		return
	}
	if user == "" || c.UserRef != user {
		// Not this browser's: show that it arrived and how its owner goes
		// on (the printed curl walk-through ends here), never its data.
		v := a.base(user, "Connection made outside this browser")
		v.Message = "bunq sent this connection back here, but it was not started in this browser: it was created through the API (as in the curl walk-through) or in another browser. This app shows only connections started here."
		v.Elsewhere = &elsewhere{ID: c.ID, Status: c.Status, AccountsURL: a.cfg.PublicURL + "/v1/consents/" + url.PathEscape(c.ID) + "/accounts"}
		a.render(w, "elsewhere", v)
		return
	}
	msg := "rejected"
	if c.Status == "active" {
		msg = "connected"
	}
	http.Redirect(w, r, BasePath+"/?msg="+msg, http.StatusSeeOther)
}

// ---- payments

func (a *App) pay(w http.ResponseWriter, r *http.Request) {
	user, ok := a.postUser(w, r)
	if !ok {
		return
	}
	f := payForm{
		AccountID:   r.PostFormValue("account_id"),
		Amount:      normalAmount(r.PostFormValue("amount")),
		IBAN:        strings.TrimSpace(r.PostFormValue("iban")),
		Name:        strings.TrimSpace(r.PostFormValue("name")),
		Description: strings.TrimSpace(r.PostFormValue("description")),
		Key:         r.PostFormValue("key"),
	}
	ctx := r.Context()
	cur, _, err := a.currentConsent(ctx, user)
	if err == nil && cur == nil {
		err = &Problem{Code: "consent_not_active"}
	}
	if err == nil && r.PostFormValue("mode") == "single" {
		bankUser := ""
		if cur.BankUser != nil {
			bankUser = cur.BankUser.DisplayName
		}
		var to string
		if to, err = a.paySingle(ctx, r, user, cur.ID, bankUser, f); err == nil {
			http.Redirect(w, r, to, http.StatusSeeOther)
			return
		}
	}
	var p *Payment
	if err == nil {
		p, err = a.createPayment(ctx, r, cur.ID, f)
	}
	if err != nil {
		// Show the form again with what was typed, under a new key: the
		// next submission is a new request.
		v := a.base(user, "Your money")
		v.PayError, v.Status = humane(err), http.StatusUnprocessableEntity
		f.Key = ""
		v.PayForm = f
		a.show(w, r, user, &v, f.AccountID, false)
		return
	}
	http.Redirect(w, r, BasePath+"/?msg=payment_created&account="+url.QueryEscape(p.AccountID)+"#payments", http.StatusSeeOther)
}

func (a *App) createPayment(ctx context.Context, r *http.Request, consentID string, f payForm) (*Payment, error) {
	if f.Key == "" || len(f.Key) > 255 {
		return nil, &Problem{Code: "idempotency_key_reused"}
	}
	if _, err := tpp.ParseMinor(f.Amount); err != nil {
		return nil, &Problem{Code: "invalid_amount"}
	}
	acc, err := a.account(ctx, r, consentID, f.AccountID)
	if err != nil {
		return nil, err
	}
	in := paymentInput{AccountID: acc.ID, Amount: Money{Amount: f.Amount, Currency: acc.Currency}, Description: f.Description}
	in.Counterparty.IBAN, in.Counterparty.Name = f.IBAN, f.Name
	return a.api.createPayment(ctx, consentID, f.Key, in)
}

// account finds one of the consent's accounts (for its currency).
func (a *App) account(ctx context.Context, r *http.Request, consentID, id string) (*Account, error) {
	accounts, err := a.api.accounts(ctx, consentID, attended(clientIP(r), false))
	if err != nil {
		return nil, err
	}
	for i := range accounts {
		if accounts[i].ID == id {
			return &accounts[i], nil
		}
	}
	return nil, &Problem{Code: "account_not_found"}
}

// statusJSON is what the page's script reads about a payment. Times come
// formatted, so the script only copies text into the page.
type statusJSON struct {
	ID            string          `json:"id"`
	Status        string          `json:"status"`
	Final         bool            `json:"final"`
	StatusHistory []shownChangeJS `json:"status_history"`
}

type shownChangeJS struct {
	Status string `json:"status"`
	At     string `json:"at"`
	Shown  string `json:"shown"`
}

// paymentStatus answers the page's script with a payment's status and
// history (statusJSON).
func (a *App) paymentStatus(w http.ResponseWriter, r *http.Request) {
	cur, ok := a.jsonConsent(w, r)
	if !ok {
		return
	}
	p, err := a.api.payment(r.Context(), cur.ID, r.PathValue("id"))
	if err != nil {
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": humane(err)})
		return
	}
	out := statusJSON{ID: p.ID, Status: p.Status, Final: p.Final(), StatusHistory: []shownChangeJS{}}
	for _, h := range p.StatusHistory {
		out.StatusHistory = append(out.StatusHistory, shownChangeJS{Status: h.Status, At: h.At, Shown: fmtClock(h.At)})
	}
	writeJSON(w, http.StatusOK, out)
}

// balancesJSON is the accounts' balances as the page shows them.
type balancesJSON struct {
	Accounts []balanceJSON `json:"accounts"`
}

type balanceJSON struct {
	ID       string `json:"id"`
	Balance  string `json:"balance"` // "€ 12.50", "−€ 3.00"
	Negative bool   `json:"negative"`
}

// balances answers the page's script once a payment executed: the
// balances, read past the TPP's cache (the user is present).
func (a *App) balances(w http.ResponseWriter, r *http.Request) {
	cur, ok := a.jsonConsent(w, r)
	if !ok {
		return
	}
	accounts, err := a.api.accounts(r.Context(), cur.ID, attended(clientIP(r), true))
	if err != nil {
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": humane(err)})
		return
	}
	out := balancesJSON{Accounts: []balanceJSON{}}
	for _, acc := range accounts {
		out.Accounts = append(out.Accounts, balanceJSON{
			ID:       acc.ID,
			Balance:  fmtMoney(acc.Balance.Amount, acc.Balance.Currency),
			Negative: strings.HasPrefix(acc.Balance.Amount, "-"),
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// jsonConsent finds the user and their usable consent for a script's
// request, answering the error itself when there is none.
func (a *App) jsonConsent(w http.ResponseWriter, r *http.Request) (*Consent, bool) {
	user := a.user(w, r, false)
	if user == "" {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "no session"})
		return nil, false
	}
	cur, _, err := a.currentConsent(r.Context(), user)
	if err != nil {
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": humane(err)})
		return nil, false
	}
	if cur == nil {
		// Not worth asking again: the page's script stops on a 4xx.
		writeJSON(w, http.StatusConflict, map[string]string{"error": humane(&Problem{Code: "consent_not_active"})})
		return nil, false
	}
	return cur, true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ---- funds and revoke

func (a *App) funds(w http.ResponseWriter, r *http.Request) {
	user, ok := a.postUser(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	accountID := r.PostFormValue("account_id")
	amount := normalAmount(r.PostFormValue("amount"))
	v := a.base(user, "Your money")
	res, err := a.checkFunds(ctx, r, user, accountID, amount)
	if err != nil {
		v.FundsErr = humane(err)
	} else {
		v.Funds = res
	}
	a.show(w, r, user, &v, accountID, false)
}

func (a *App) checkFunds(ctx context.Context, r *http.Request, user, accountID, amount string) (*fundsResult, error) {
	if _, err := tpp.ParseMinor(amount); err != nil {
		return nil, &Problem{Code: "invalid_amount"}
	}
	cur, _, err := a.currentConsent(ctx, user)
	if err != nil {
		return nil, err
	}
	if cur == nil {
		return nil, &Problem{Code: "consent_not_active"}
	}
	acc, err := a.account(ctx, r, cur.ID, accountID)
	if err != nil {
		return nil, err
	}
	m := Money{Amount: amount, Currency: acc.Currency}
	ok, err := a.api.confirmFunds(ctx, cur.ID, acc.ID, m)
	if err != nil {
		return nil, err
	}
	return &fundsResult{Account: label(*acc), Amount: m, Sufficient: ok, CheckedAt: a.now()}, nil
}

func (a *App) revoke(w http.ResponseWriter, r *http.Request) {
	user, ok := a.postUser(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	cur, _, err := a.currentConsent(ctx, user)
	if err == nil && cur != nil {
		_, err = a.api.revoke(ctx, cur.ID)
	}
	if err != nil {
		v := a.base(user, "Your money")
		v.Error, v.Status = humane(err), http.StatusBadGateway
		a.show(w, r, user, &v, "", false)
		return
	}
	http.Redirect(w, r, BasePath+"/?msg=disconnected", http.StatusSeeOther)
}
