package sandbox

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

type authKind int

const (
	authNone         authKind = iota // installation, sandbox users
	authInstallation                 // device-server, session-server, PSD2 credential
	authSession                      // everything else
)

// route is one API endpoint. Patterns are matched segment-wise; a segment
// in braces captures a number.
type route struct {
	method string
	segs   []string
	auth   authKind
	signed bool // body signature required (§2.2)
	h      func(*call) reply
}

// call is one API request being handled, with what the auth step found.
// Handlers run with Bank.mu held.
type call struct {
	b    *Bank
	st   *state
	r    *http.Request
	body []byte
	now  time.Time
	ip   string
	vars map[string]int64
	inst *installation
	sess *session
}

func (c *call) id(name string) int64 { return c.vars[name] }

func (b *Bank) routes() []route {
	r := func(method, pattern string, auth authKind, signed bool, h func(*call) reply) route {
		return route{method, strings.Split(strings.Trim(pattern, "/"), "/"), auth, signed, h}
	}
	const (
		u  = "/v1/user/{userID}"
		ma = u + "/monetary-account/{accountID}"
	)
	return []route{
		r("POST", "/v1/installation", authNone, false, b.hInstallation),
		r("POST", "/v1/sandbox-user-person", authNone, false, b.hSandboxUser("UserPerson")),
		r("POST", "/v1/sandbox-user-company", authNone, false, b.hSandboxUser("UserCompany")),
		r("POST", "/v1/device-server", authInstallation, false, b.hDeviceServer),
		r("POST", "/v1/session-server", authInstallation, true, b.hSessionServer),
		r("POST", "/v1/payment-service-provider-credential", authInstallation, false, b.hCredential),
		r("DELETE", "/v1/session/{sessionID}", authSession, false, b.hDeleteSession),

		r("GET", "/v1/user", authSession, false, b.hUserList),
		r("GET", u, authSession, false, b.hUserGet("")),
		r("GET", "/v1/user-person/{userID}", authSession, false, b.hUserGet("UserPerson")),
		r("GET", "/v1/user-company/{userID}", authSession, false, b.hUserGet("UserCompany")),
		r("GET", "/v1/user-payment-service-provider/{userID}", authSession, false, b.hUserGet("UserPaymentServiceProvider")),

		r("GET", u+"/monetary-account", authSession, false, b.hAccountList("")),
		r("GET", ma, authSession, false, b.hAccountGet("")),
		r("GET", u+"/monetary-account-bank", authSession, false, b.hAccountList("MonetaryAccountBank")),
		r("POST", u+"/monetary-account-bank", authSession, false, b.hAccountCreate("MonetaryAccountBank")),
		r("GET", u+"/monetary-account-bank/{accountID}", authSession, false, b.hAccountGet("MonetaryAccountBank")),
		r("PUT", u+"/monetary-account-bank/{accountID}", authSession, false, b.hAccountUpdate("MonetaryAccountBank")),
		r("GET", u+"/monetary-account-savings", authSession, false, b.hAccountList("MonetaryAccountSavings")),
		r("POST", u+"/monetary-account-savings", authSession, false, b.hAccountCreate("MonetaryAccountSavings")),
		r("GET", u+"/monetary-account-savings/{accountID}", authSession, false, b.hAccountGet("MonetaryAccountSavings")),
		r("PUT", u+"/monetary-account-savings/{accountID}", authSession, false, b.hAccountUpdate("MonetaryAccountSavings")),
		r("GET", u+"/monetary-account-joint", authSession, false, b.hAccountList("MonetaryAccountJoint")),
		r("GET", u+"/monetary-account-joint/{accountID}", authSession, false, b.hAccountGet("MonetaryAccountJoint")),
		r("PUT", u+"/monetary-account-joint/{accountID}", authSession, false, b.hAccountUpdate("MonetaryAccountJoint")),

		r("GET", ma+"/payment", authSession, false, b.hPaymentList),
		r("GET", ma+"/payment/{paymentID}", authSession, false, b.hPaymentGet),
		r("POST", ma+"/payment", authSession, true, b.hPaymentCreate),
		r("POST", ma+"/request-inquiry", authSession, false, b.hInquiryCreate),
		r("GET", ma+"/request-inquiry", authSession, false, b.hInquiryList),
		r("GET", ma+"/request-inquiry/{inquiryID}", authSession, false, b.hInquiryGet),
		r("POST", ma+"/draft-payment", authSession, true, b.hDraftCreate),
		r("GET", ma+"/draft-payment", authSession, false, b.hDraftList),
		r("GET", ma+"/draft-payment/{draftID}", authSession, false, b.hDraftGet),
		r("PUT", ma+"/draft-payment/{draftID}", authSession, false, b.hDraftUpdate),
		r("GET", ma+"/schedule", authSession, false, b.hScheduleList),
		r("POST", ma+"/schedule-payment", authSession, true, b.hSchedulePaymentCreate(false)),
		r("GET", ma+"/schedule-payment", authSession, false, b.hSchedulePaymentList),
		r("GET", ma+"/schedule-payment/{scheduleID}", authSession, false, b.hSchedulePaymentGet),
		r("POST", ma+"/schedule-payment-batch", authSession, true, b.hSchedulePaymentCreate(true)),
		r("POST", ma+"/notification-filter-url", authSession, false, b.hNotifSet(true)),
		r("GET", ma+"/notification-filter-url", authSession, false, b.hNotifList(true)),

		r("POST", u+"/payment-service-provider-draft-payment", authSession, false, b.hPSPDraftCreate),
		r("GET", u+"/payment-service-provider-draft-payment", authSession, false, b.hPSPDraftList),
		r("GET", u+"/payment-service-provider-draft-payment/{draftID}", authSession, false, b.hPSPDraftGet),
		r("PUT", u+"/payment-service-provider-draft-payment/{draftID}", authSession, false, b.hPSPDraftUpdate),
		r("POST", u+"/confirmation-of-funds", authSession, false, b.hConfirmFunds),
		r("POST", u+"/notification-filter-url", authSession, false, b.hNotifSet(false)),
		r("GET", u+"/notification-filter-url", authSession, false, b.hNotifList(false)),

		r("POST", u+"/oauth-client", authSession, false, b.hOauthClientCreate),
		r("GET", u+"/oauth-client", authSession, false, b.hOauthClientList),
		r("GET", u+"/oauth-client/{clientID}", authSession, false, b.hOauthClientGet),
		r("PUT", u+"/oauth-client/{clientID}", authSession, false, b.hOauthClientUpdate),
		r("POST", u+"/oauth-client/{clientID}/callback-url", authSession, false, b.hCallbackURLCreate),
		r("GET", u+"/oauth-client/{clientID}/callback-url", authSession, false, b.hCallbackURLList),
		r("GET", u+"/oauth-client/{clientID}/callback-url/{urlID}", authSession, false, b.hCallbackURLGet),
		r("PUT", u+"/oauth-client/{clientID}/callback-url/{urlID}", authSession, false, b.hCallbackURLUpdate),
		r("DELETE", u+"/oauth-client/{clientID}/callback-url/{urlID}", authSession, false, b.hCallbackURLDelete),
	}
}

// match finds the route for method and path. pathKnown reports whether
// some route has this path with another method.
func (b *Bank) match(method, path string) (rt *route, vars map[string]int64, pathKnown bool) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i := range b.table {
		cand := &b.table[i]
		if len(cand.segs) != len(segs) {
			continue
		}
		v := map[string]int64{}
		okPath := true
		for j, s := range cand.segs {
			if strings.HasPrefix(s, "{") {
				n, err := strconv.ParseInt(segs[j], 10, 64)
				if err != nil || n < 0 {
					okPath = false
					break
				}
				v[strings.Trim(s, "{}")] = n
			} else if s != segs[j] {
				okPath = false
				break
			}
		}
		if !okPath {
			continue
		}
		if cand.method == method {
			return cand, v, true
		}
		pathKnown = true
	}
	return nil, nil, pathKnown
}

// statsKey is "METHOD /path" with numeric segments replaced by {id}.
func statsKey(method, path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if s == "" {
			continue
		}
		if _, err := strconv.ParseInt(s, 10, 64); err == nil {
			segs[i] = "{id}"
		}
	}
	return method + " " + strings.Join(segs, "/")
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

type sigMode int

const (
	sigNormal sigMode = iota
	sigBad
	sigNone
)

func (b *Bank) serveAPI(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_sandbox/") {
		b.serveControl(w, r)
		return
	}
	start := time.Now()
	path := r.URL.Path
	if len(path) > 1 {
		path = strings.TrimRight(path, "/")
	}
	// Bodies are read whatever the method: GETs with a JSON body are fine.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if id := r.Header.Get("X-Bunq-Client-Request-Id"); id != "" {
		w.Header().Set("X-Bunq-Client-Request-Id", id)
	}
	w.Header().Set("X-Bunq-Client-Response-Id", randomUUID())
	if err != nil {
		b.write(w, badRequest("The request body is too large."), sigNormal)
		return
	}
	token := r.Header.Get("X-Bunq-Client-Authentication")

	b.mu.Lock()
	ip := remoteIP(r)
	if b.apparentIP != "" && isLoopbackHost(ip) {
		ip = b.apparentIP
	}
	b.stats[statsKey(r.Method, path)]++
	f := b.takeFaultLocked(r.Method, path)
	// bunq limits per source IP and endpoint (§6.4); per installation is
	// the emulator's option.
	client := "ip:" + ip
	instID := int64(0)
	if inst := b.st.installations[token]; inst != nil {
		instID = inst.id
	} else if s := b.st.sessions[token]; s != nil {
		instID = s.installationID
	}
	if b.cfg.RateLimitPerInstallation && instID != 0 {
		client = "installation:" + itoa(instID)
	}
	var strictRep *reply
	if b.cfg.Strict {
		strictRep = b.strictLocked(r, instID)
	}
	b.mu.Unlock()

	mode := sigNormal
	if f != nil {
		if !f.delay(r.Context()) {
			return
		}
		switch f.Kind {
		case "status":
			b.write(w, faultReply(f.Status), sigNormal)
			return
		case "drop_before":
			hijackClose(w)
			return
		case "expire_session":
			b.mu.Lock()
			if s := b.st.sessions[token]; s != nil {
				s.expires = b.now().Add(-time.Second)
			}
			b.mu.Unlock()
		case "bad_signature":
			mode = sigBad
		case "no_signature":
			mode = sigNone
		}
	}
	if strictRep != nil {
		b.write(w, *strictRep, mode)
		return
	}
	if rep := b.rateLimit(client, r.Method, path); rep != nil {
		b.write(w, *rep, mode)
		return
	}
	rep := b.dispatch(r, path, body, ip, token)
	if f != nil && f.Kind == "drop" {
		hijackClose(w) // applied, but the client never hears about it
		return
	}
	b.write(w, rep, mode)
	b.log.Debug("sandbox api", "method", r.Method, "path", path, "status", rep.status, "took", time.Since(start))
}

func (b *Bank) dispatch(r *http.Request, path string, body []byte, ip, token string) reply {
	rt, vars, known := b.match(r.Method, path)
	if rt == nil {
		if known {
			return bunqErr(405, "Method not allowed for this endpoint.")
		}
		return bunqErr(404, "Route not found.")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	c := &call{b: b, st: b.st, r: r, body: body, now: b.now(), ip: ip, vars: vars}
	switch rt.auth {
	case authInstallation:
		c.inst = b.st.installations[token]
		if c.inst == nil {
			if b.st.sessions[token] != nil {
				return bunqErr(403, txtNeedInst)
			}
			return bunqErr(403, txtNoAuth)
		}
	case authSession:
		s := b.st.sessions[token]
		if s == nil {
			if b.st.installations[token] != nil {
				return bunqErr(403, txtNeedSession)
			}
			return bunqErr(403, txtNoAuth)
		}
		if !c.now.Before(s.expires) {
			delete(b.st.sessions, token)
			return bunqErr(403, txtNoAuth)
		}
		// bunq/doc §Authentication: "If a request is made 30 minutes before
		// a session expires, the session will automatically be extended."
		if s.expires.Sub(c.now) <= sessionExtendWithin {
			s.expires = c.now.Add(s.timeout)
		}
		c.sess = s
		c.inst = b.st.instByID[s.installationID]
	}
	if rt.signed {
		if rep := c.checkSignature(); rep != nil {
			return *rep
		}
	}
	return rt.h(c)
}

// checkSignature enforces the body signature: 466 when missing, 400 when
// it does not verify against the installation's key over the raw bytes.
func (c *call) checkSignature() *reply {
	sig := c.r.Header.Get("X-Bunq-Client-Signature")
	if strings.TrimSpace(sig) == "" {
		r := bunqErr(466, txtSigRequired)
		return &r
	}
	if c.inst == nil || !verifyBody(c.inst.pub, c.body, sig) {
		r := bunqErr(400, txtSigInvalid)
		return &r
	}
	return nil
}

// write sends rep; 2xx bodies carry the bank's body-only signature.
func (b *Bank) write(w http.ResponseWriter, rep reply, mode sigMode) {
	raw, err := json.Marshal(rep.body)
	if err != nil {
		rep = bunqErr(500, "An internal error occurred.")
		raw, _ = json.Marshal(rep.body)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if rep.status/100 == 2 {
		switch mode {
		case sigNormal:
			h.Set("X-Bunq-Server-Signature", signBody(b.key, raw))
		case sigBad:
			h.Set("X-Bunq-Server-Signature", signBody(b.key, append(raw, ' ')))
		}
	}
	w.WriteHeader(rep.status)
	w.Write(raw)
}

// hijackClose closes the connection without any response.
func hijackClose(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler) // HTTP/2: abort the stream instead
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	conn.Close()
}

// faultText holds bunq's texts for the statuses tests inject.
var faultText = map[int]string{
	400: "Bad request.",
	401: "Token or signature provided is not valid.",
	403: txtNoAuth,
	404: "Route not found.",
	429: "Too many requests. You can do a maximum of 3 calls per 3 second to this endpoint.",
	466: txtSigRequired,
	490: "User error.",
	491: "The bunq API is in maintenance mode. Please try again later.",
	500: "Something went wrong on our side. Please contact bunq.",
	502: "Bad gateway.",
	503: "Service temporarily unavailable. Please try again later.",
	504: "Gateway timeout.",
}

func faultReply(status int) reply {
	if status < 100 || status > 999 {
		status = 500
	}
	text, ok := faultText[status]
	if !ok {
		text = "Injected error " + strconv.Itoa(status) + "."
	}
	return bunqErr(status, text)
}

// fault is one injected failure (see the control endpoint /_sandbox/faults).
type fault struct {
	Method    string `json:"method"`
	Path      string `json:"path"`
	Kind      string `json:"kind"`
	Status    int    `json:"status"`
	LatencyMS int    `json:"latency_ms"`
	Count     int    `json:"count"`
	left      int
	unlimited bool
}

var faultKinds = map[string]bool{"latency": true, "status": true, "drop": true, "drop_before": true,
	"bad_signature": true, "no_signature": true, "expire_session": true}

// delay waits out the fault's latency; false when the client left first.
func (f *fault) delay(ctx context.Context) bool {
	if f.LatencyMS <= 0 {
		return true
	}
	t := time.NewTimer(time.Duration(f.LatencyMS) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (f *fault) matches(method, path string) bool {
	if f.Method != "" && f.Method != "*" && !strings.EqualFold(f.Method, method) {
		return false
	}
	pat := strings.Split(strings.Trim(f.Path, "/"), "/")
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i, p := range pat {
		if p == "**" && i == len(pat)-1 {
			return true
		}
		if i >= len(segs) || (p != "*" && p != segs[i]) {
			return false
		}
	}
	return len(pat) == len(segs)
}

// takeFaultLocked returns the first fault matching the call and uses up one
// of its counts.
func (b *Bank) takeFaultLocked(method, path string) *fault {
	for i, f := range b.faults {
		if !f.matches(method, path) {
			continue
		}
		if !f.unlimited {
			f.left--
			if f.left <= 0 {
				b.faults = append(b.faults[:i:i], b.faults[i+1:]...)
			}
		}
		return f
	}
	return nil
}

// rateLimit applies bunq's limits per client and endpoint (§6.4) on a
// sliding window of the emulator clock. Only admitted calls use budget.
func (b *Bank) rateLimit(client, method, path string) *reply {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.rateOn {
		return nil
	}
	limit, window := 0, 3*time.Second
	switch method {
	case http.MethodGet:
		limit = 3
	case http.MethodPost:
		limit = 5
	case http.MethodPut:
		limit = 2
	default:
		return nil
	}
	if path == "/v1/session-server" {
		limit, window = 1, 30*time.Second
	}
	key := client + " " + method + " " + path
	now := b.now()
	hits := b.hits[key]
	kept := hits[:0]
	for _, t := range hits {
		if now.Sub(t) < window {
			kept = append(kept, t)
		}
	}
	if len(kept) >= limit {
		b.hits[key] = kept
		r := bunqErr(429, "Too many requests. You can do a maximum of "+strconv.Itoa(limit)+
			" calls per "+strconv.Itoa(int(window/time.Second))+" second to this endpoint.")
		return &r
	}
	b.hits[key] = append(kept, now)
	return nil
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// strictHeaders are the request headers bunq documents as mandatory
// (docs/bunq-api.md §2.1). X-Bunq-Client-Request-Id is checked separately.
var strictHeaders = []string{"User-Agent", "Cache-Control", "X-Bunq-Geolocation", "X-Bunq-Language", "X-Bunq-Region"}

// strictLocked applies Config.Strict: every mandatory header present and
// request ids of changing calls unique per installation (or per source
// before one exists).
func (b *Bank) strictLocked(r *http.Request, instID int64) *reply {
	for _, h := range strictHeaders {
		if strings.TrimSpace(r.Header.Get(h)) == "" {
			rep := badRequest("The header " + h + " is required.")
			return &rep
		}
	}
	id := strings.TrimSpace(r.Header.Get("X-Bunq-Client-Request-Id"))
	if id == "" {
		rep := badRequest("The header X-Bunq-Client-Request-Id is required.")
		return &rep
	}
	// A GET resent with its id is the same request: HTTP clients resend
	// idempotent requests on their own when a kept-alive connection drops.
	if r.Method == http.MethodGet {
		return nil
	}
	key := itoa(instID) + " " + id
	if b.requestIDs[key] {
		rep := badRequest("The X-Bunq-Client-Request-Id " + id + " was already used by this device.")
		return &rep
	}
	b.requestIDs[key] = true
	return nil
}

// sessionExtendWithin: a session used this close to its expiry is extended
// by its session_timeout.
const sessionExtendWithin = 30 * time.Minute
