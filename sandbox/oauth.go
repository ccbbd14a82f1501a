package sandbox

import (
	"crypto/subtle"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// The OAuth host (consent page and the "bunq app" pages) and the token host
// (docs/bunq-api.md §4). Pages are plain server-rendered HTML forms: they
// work without JavaScript.

func (b *Bank) oauthMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /auth", b.authPage)
	mux.HandleFunc("POST /auth", b.authPage)
	mux.HandleFunc("GET /app", b.appPage)
	mux.HandleFunc("POST /app/draft-payments/{id}/{action}", b.appDraft)
	mux.HandleFunc("POST /app/psp-draft-payments/{id}/{action}", b.appDraft)
	mux.HandleFunc("POST /app/revoke", b.appRevoke)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/app", http.StatusFound) })
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.stats[statsKey(r.Method, r.URL.Path)]++
		b.mu.Unlock()
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action *")
		mux.ServeHTTP(w, r)
	})
}

var pages = template.Must(template.New("layout").Parse(`{{define "top"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · bunq sandbox</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f4f5f7;color:#1b1b1f;margin:0}
header{background:#1b1b1f;color:#fff;padding:14px 24px;font-weight:700;letter-spacing:.5px}
header span{color:#3fb9e8}
main{max-width:560px;margin:32px auto;background:#fff;border-radius:14px;padding:28px;box-shadow:0 2px 12px rgba(0,0,0,.08)}
h1{font-size:1.4rem;margin-top:0}
fieldset{border:0;padding:0;margin:0 0 16px}
legend{font-weight:600;margin-bottom:8px}
label.choice{display:block;border:1px solid #d0d3da;border-radius:10px;padding:12px;margin:8px 0;cursor:pointer}
label.choice:hover{border-color:#3fb9e8}
.muted{color:#5d6270;font-size:.92rem}
button{font:inherit;border:0;border-radius:10px;padding:12px 20px;cursor:pointer;margin:4px 8px 4px 0}
button.primary{background:#2a7de1;color:#fff}
button.secondary{background:#e7e9ee;color:#1b1b1f}
button:focus,a:focus,input:focus{outline:3px solid #f6a623;outline-offset:2px}
ul{padding-left:20px}
table{width:100%;border-collapse:collapse;margin:8px 0 16px}
th,td{text-align:left;padding:8px 4px;border-bottom:1px solid #eceef2;font-size:.95rem}
.error{border-left:4px solid #d93025;padding:8px 12px;background:#fdecea}
dl.draft{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:6px 16px;margin:8px 0 16px}
dl.draft dt{color:#5d6270}dl.draft dd{margin:0;overflow-wrap:anywhere}
.draft-card{border:1px solid #eceef2;border-radius:10px;padding:12px 16px;margin:8px 0 16px}
form.inline{display:inline}
p[role=status]{border-left:4px solid #2a7de1;background:#eaf3fd;padding:8px 12px}
@media (max-width:600px){main{margin:16px 12px;padding:20px}}
</style></head><body><header role="banner">bunq <span>sandbox</span></header><main role="main">{{end}}
{{define "bottom"}}</main></body></html>{{end}}

{{define "error"}}{{template "top" .}}<h1>{{.Title}}</h1><p class="error" role="alert">{{.Message}}</p>
<p class="muted">You can close this window and return to the app you came from.</p>{{template "bottom" .}}{{end}}

{{define "signin"}}{{template "top" .}}<h1>Log in to bunq</h1>
<p><strong>{{.TPP}}</strong> wants to connect to your bunq account.</p>
<form method="post" action="/auth">
{{template "hidden" .}}
<fieldset><legend>Choose a sandbox user</legend>
{{range $i, $u := .Users}}<label class="choice"><input type="radio" name="user_id" value="{{$u.ID}}" {{if eq $i 0}}checked{{end}} required>
{{$u.Name}} <span class="muted">{{$u.Email}}</span></label>{{end}}
</fieldset>
<button class="primary" type="submit">Continue</button>
</form>{{template "bottom" .}}{{end}}

{{define "hidden"}}<input type="hidden" name="response_type" value="code">
<input type="hidden" name="client_id" value="{{.ClientID}}">
<input type="hidden" name="redirect_uri" value="{{.RedirectURI}}">
<input type="hidden" name="state" value="{{.State}}">{{end}}

{{define "consent"}}{{template "top" .}}<h1>Connect {{.TPP}}?</h1>
<p>Hi {{.UserName}}. <strong>{{.TPP}}</strong> asks for access to your bunq account:</p>
<ul>{{range .Access}}<li>{{.}}</li>{{end}}</ul>
{{if .Drafts}}<h2>{{if gt (len .Drafts) 1}}Payments{{else}}Payment{{end}} to approve</h2>
<p class="muted">Approving the connection also approves {{if gt (len .Drafts) 1}}all of these payments{{else}}this payment{{end}}; denying it declines them.</p>
{{range .Drafts}}<dl class="draft"><dt>From</dt><dd>{{.From}}</dd><dt>To</dt><dd>{{.To}}</dd><dt>Description</dt><dd>{{.Description}}</dd><dt>Amount</dt><dd>€ {{.Amount}}</dd></dl>
{{end}}{{end}}
<form method="post" action="/auth">
{{template "hidden" .}}
<input type="hidden" name="user_id" value="{{.UserID}}">
{{range .Drafts}}<input type="hidden" name="psp_draft_payment_id" value="{{.ID}}">
{{end}}
<button class="primary" type="submit" name="decision" value="approve">Approve</button>
<button class="secondary" type="submit" name="decision" value="deny">Deny</button>
</form>{{template "bottom" .}}{{end}}

{{define "app-users"}}{{template "top" .}}<h1>bunq app</h1>
<p>Choose a sandbox user to see their pending payments and connected apps.</p>
<ul>{{range .Users}}<li><a href="/app?user_id={{.ID}}">{{.Name}}</a> <span class="muted">{{.Email}}</span></li>{{end}}</ul>
{{template "bottom" .}}{{end}}

{{define "app"}}{{template "top" .}}<h1>Hi {{.UserName}}</h1>
{{if .Message}}<p role="status">{{.Message}}</p>{{end}}
<h2>Payments waiting for you</h2>
{{if .Drafts}}{{range .Drafts}}<section class="draft-card" aria-label="Payment {{.ID}}">
<dl class="draft"><dt>From</dt><dd>{{.From}}</dd><dt>To</dt><dd>{{.To}}</dd><dt>Description</dt><dd>{{.Description}}</dd><dt>Amount</dt><dd>€ {{.Amount}}</dd></dl>
<form method="post" action="{{.Action}}/accept" class="inline"><input type="hidden" name="user_id" value="{{$.UserID}}"><button class="primary" type="submit" aria-label="Accept payment {{.ID}}">Accept</button></form>
<form method="post" action="{{.Action}}/reject" class="inline"><input type="hidden" name="user_id" value="{{$.UserID}}"><button class="secondary" type="submit" aria-label="Reject payment {{.ID}}">Reject</button></form>
</section>{{end}}{{else}}<p class="muted">Nothing to approve.</p>{{end}}
<h2>Connected apps</h2>
{{if .Apps}}<ul>{{range .Apps}}<li>{{.Name}}
<form method="post" action="/app/revoke"><input type="hidden" name="user_id" value="{{$.UserID}}"><input type="hidden" name="client_id" value="{{.ClientID}}">
<button class="secondary" type="submit" aria-label="Revoke access of {{.Name}}">Revoke access</button></form></li>{{end}}</ul>
{{else}}<p class="muted">No connected apps.</p>{{end}}
<p><a href="/app">Switch user</a></p>{{template "bottom" .}}{{end}}
`))

type pageUser struct {
	ID          int64
	Name, Email string
}

type pageDraft struct {
	ID                                    int64
	From, To, Description, Amount, Action string
}

func (b *Bank) render(w http.ResponseWriter, status int, name string, data map[string]any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, name, data); err != nil {
		b.log.Error("sandbox: render page", "page", name, "err", err)
	}
}

func (b *Bank) errorPage(w http.ResponseWriter, status int, msg string) {
	b.render(w, status, "error", map[string]any{"Title": "Something is wrong with this request", "Message": msg})
}

// sandboxUser returns user id if it is a person or company, the users who
// sign in on the pages; nil otherwise.
func (st *state) sandboxUser(id int64) *user {
	if u := st.users[id]; u != nil && (u.kind == "UserPerson" || u.kind == "UserCompany") {
		return u
	}
	return nil
}

func (st *state) pageUsers() []pageUser {
	var out []pageUser
	for _, id := range st.order {
		if u := st.sandboxUser(id); u != nil {
			out = append(out, pageUser{u.id, u.name, u.email})
		}
	}
	return out
}

var roleAccess = map[string]string{
	"AISP":  "See your accounts, balances and transactions",
	"PISP":  "Prepare payments for you to approve",
	"CBPII": "Check whether you have enough money for a payment",
	"PIISP": "Check whether you have enough money for a payment",
}

// authPage serves /auth: sign in (pick a user), then approve or deny.
func (b *Bank) authPage(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		b.errorPage(w, 400, "The request could not be read.")
		return
	}
	get := r.Form.Get
	b.mu.Lock()
	defer b.mu.Unlock()
	if get("response_type") != "code" {
		b.errorPage(w, 400, "The response_type must be \"code\".")
		return
	}
	oc, problem := b.st.checkAuthRequest(get("client_id"), get("redirect_uri"))
	if problem != "" {
		b.errorPage(w, 400, problem) // never redirect to an unverified URI
		return
	}
	psp := b.st.users[oc.pspID]
	data := map[string]any{
		"Title": "Connect " + psp.name, "TPP": psp.name, "ClientID": oc.clientID,
		"RedirectURI": get("redirect_uri"), "State": get("state"),
	}
	uid, _ := strconv.ParseInt(get("user_id"), 10, 64)
	u := b.st.sandboxUser(uid)
	if r.Method == http.MethodPost && get("user_id") != "" && u == nil {
		b.errorPage(w, 400, "Unknown sandbox user.")
		return
	}
	if r.Method == http.MethodGet || u == nil {
		data["Users"] = b.st.pageUsers()
		b.render(w, 200, "signin", data)
		return
	}
	switch get("decision") {
	case "":
		var access []string
		seen := map[string]bool{}
		for _, role := range psp.roles {
			if a := roleAccess[role]; !seen[a] {
				seen[a] = true
				access = append(access, a)
			}
		}
		// bunq shows all of the PSP's pending drafts from the user's
		// accounts, whatever the authorization is for, and decides them
		// together (bunq-api.md §12.5). The form names the drafts shown,
		// so one made while the page is open is not decided unseen.
		var drafts []pageDraft
		for _, d := range b.st.pspDraftsToAuthorize(oc.pspID, u, b.now()) {
			drafts = append(drafts, pageDraft{ID: d.id, From: d.senderIBAN, To: d.counterName + " (" + d.counterIBAN + ")", Description: d.description, Amount: amountText(d.amount)})
		}
		data["Drafts"] = drafts
		data["UserID"], data["UserName"], data["Access"] = u.id, u.name, access
		b.render(w, 200, "consent", data)
	case "approve", "deny":
		var ds []*pspDraft
		for _, s := range r.Form["psp_draft_payment_id"] {
			id, _ := strconv.ParseInt(s, 10, 64)
			d := b.st.pspDrafts[id]
			if d == nil || !b.st.debitsUser(d, oc.pspID, u.id) {
				b.errorPage(w, 400, "Unknown payment.")
				return
			}
			ds = append(ds, d)
		}
		http.Redirect(w, r, b.decideLocked(oc, get("redirect_uri"), get("state"), u, get("decision") == "approve", ds), http.StatusFound)
	default:
		b.errorPage(w, 400, "Unknown decision.")
	}
}

func amountText(minor int64) string { return formatCents(minor) }

// appPage is the emulated bunq app: pending drafts and connected apps.
func (b *Bank) appPage(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	uid, _ := strconv.ParseInt(r.URL.Query().Get("user_id"), 10, 64)
	u := b.st.sandboxUser(uid)
	if u == nil {
		b.render(w, 200, "app-users", map[string]any{"Title": "bunq app", "Users": b.st.pageUsers()})
		return
	}
	var drafts []pageDraft
	ids := idsWhere(b.st.drafts, func(d *draftPayment) bool {
		return d.status == "PENDING" && b.st.accounts[d.accountID].heldBy(u.id)
	})
	slices.Sort(ids)
	for _, id := range ids {
		d := b.st.drafts[id]
		var total int64
		var to, desc []string
		for _, e := range d.entries {
			total += e.amount
			name := e.alias.Name
			if name == "" {
				name = e.alias.Value
			}
			to, desc = append(to, name), append(desc, e.description)
		}
		from := ""
		if acc := b.st.accounts[d.accountID]; acc != nil {
			from = acc.iban
			if acc.description != "" {
				from = acc.description + " (" + acc.iban + ")"
			}
		}
		drafts = append(drafts, pageDraft{ID: id, From: from, To: strings.Join(to, ", "), Description: strings.Join(desc, "; "), Amount: amountText(total), Action: "/app/draft-payments/" + itoa(id)})
	}
	var apps []map[string]string
	seen := map[string]bool{}
	for _, g := range b.st.grants {
		if g.userID == u.id && !g.revoked && !seen[g.clientID] {
			seen[g.clientID] = true
			apps = append(apps, map[string]string{"Name": b.st.users[g.pspID].name, "ClientID": g.clientID})
		}
	}
	b.render(w, 200, "app", map[string]any{"Title": "bunq app", "UserID": u.id, "UserName": u.name,
		"Drafts": drafts, "Apps": apps, "Message": r.URL.Query().Get("msg")})
}

// appDraft accepts or rejects a draft or PSP draft payment for the user
// of the form, who must hold the debited account.
func (b *Bank) appDraft(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	uid, _ := strconv.ParseInt(r.FormValue("user_id"), 10, 64)
	action := r.PathValue("action")
	if action != "accept" && action != "reject" {
		b.errorPage(w, 404, "Unknown action.")
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.st.sandboxUser(uid) == nil { // 0 would answer without the owner check
		b.errorPage(w, 400, "Unknown sandbox user.")
		return
	}
	_, rep := b.answerDraftLocked(strings.HasPrefix(r.URL.Path, "/app/psp-"), id, uid, action == "accept")
	msg := "Payment rejected."
	if action == "accept" {
		msg = "Payment accepted."
	}
	switch {
	case rep == nil:
	case rep.status == 404:
		b.errorPage(w, 404, "No such payment.")
		return
	case rep.status == 403:
		b.errorPage(w, 403, "This payment belongs to another user.")
		return
	default:
		msg = "Could not do that: " + rep.body.(obj)["Error"].([]obj)[0]["error_description"].(string)
	}
	http.Redirect(w, r, "/app?user_id="+itoa(uid)+"&msg="+urlEscape(msg), http.StatusSeeOther)
}

func (b *Bank) appRevoke(w http.ResponseWriter, r *http.Request) {
	uid, _ := strconv.ParseInt(r.FormValue("user_id"), 10, 64)
	b.mu.Lock()
	n := b.revokeLocked(uid, r.FormValue("client_id"))
	b.mu.Unlock()
	msg := "Access revoked."
	if n == 0 {
		msg = "No such connected app."
	}
	http.Redirect(w, r, "/app?user_id="+itoa(uid)+"&msg="+urlEscape(msg), http.StatusSeeOther)
}

// serveToken is POST /v1/token on the token host. Parameters come from the
// query string (SDKs) or a form body (newer docs).
func (b *Bank) serveToken(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	b.stats[statsKey(r.Method, r.URL.Path)]++
	f := b.takeFaultLocked(r.Method, r.URL.Path)
	b.mu.Unlock()
	if f != nil {
		if !f.delay(r.Context()) {
			return
		}
		switch f.Kind {
		case "status":
			writeJSON(w, f.Status, obj{"error": "server_error", "error_description": "Injected failure."})
			return
		case "drop_before", "drop":
			hijackClose(w) // the token host never applies a dropped exchange
			return
		}
	}
	if r.URL.Path != "/v1/token" {
		writeJSON(w, 404, obj{"error": "not_found", "error_description": "Unknown endpoint."})
		return
	}
	if r.Method != http.MethodPost {
		writeJSON(w, 405, obj{"error": "invalid_request", "error_description": "Use POST."})
		return
	}
	if err := r.ParseForm(); err != nil {
		writeJSON(w, 400, obj{"error": "invalid_request", "error_description": "The parameters could not be read."})
		return
	}
	get := r.Form.Get
	// Clients such as golang.org/x/oauth2 may authenticate with HTTP Basic
	// instead of parameters (RFC 6749 §2.3.1); accept both.
	if id, sec, ok := r.BasicAuth(); ok && get("client_id") == "" && get("client_secret") == "" {
		id, _ = url.QueryUnescape(id)
		sec, _ = url.QueryUnescape(sec)
		r.Form.Set("client_id", id)
		r.Form.Set("client_secret", sec)
	}
	fail := func(code, desc string) {
		writeJSON(w, 400, obj{"error": code, "error_description": desc})
	}
	if get("grant_type") != "authorization_code" {
		fail("unsupported_grant_type", "The grant_type must be authorization_code.")
		return
	}
	for _, p := range []string{"code", "redirect_uri", "client_id", "client_secret"} {
		if get(p) == "" {
			fail("invalid_request", "The parameter "+p+" is required.")
			return
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	oc := b.st.clients[get("client_id")]
	if oc == nil || oc.status != "ACTIVE" || subtle.ConstantTimeCompare([]byte(oc.secret), []byte(get("client_secret"))) != 1 {
		fail("invalid_client", "The client credentials are invalid.")
		return
	}
	ac := b.st.codes[get("code")]
	now := b.now()
	if ac == nil || ac.used || !now.Before(ac.expires) || ac.clientID != oc.clientID {
		fail("invalid_grant", "The authorization code is invalid or expired.")
		return
	}
	if ac.redirectURI != get("redirect_uri") {
		fail("invalid_grant", "The redirect_uri does not match the one of the authorization request.")
		return
	}
	ac.used = true
	g := &grant{id: b.st.next("user"), pspID: oc.pspID, userID: ac.userID, clientID: oc.clientID,
		token: randomHex(64), created: now, redirectURI: ac.redirectURI}
	b.st.grants[g.id] = g
	b.st.apiKeys[g.token] = keyOwner{kind: "grant", id: g.id}
	// The state is the one the code was issued with, whatever the caller
	// sends: it tells the client which flow the code belongs to.
	answer := obj{"access_token": g.token, "token_type": "bearer", "state": ac.state}
	if b.noTokenState {
		delete(answer, "state")
	}
	writeJSON(w, 200, answer)
}

func urlEscape(s string) string { return url.QueryEscape(s) }
