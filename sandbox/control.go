package sandbox

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Control endpoints (emulator only, no auth, plain JSON) under /_sandbox/.

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func controlErr(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, obj{"error": msg})
}

// controlCall is one request to a control endpoint: its body, read once,
// and its path below /_sandbox/ split at '/'.
type controlCall struct {
	w    http.ResponseWriter
	r    *http.Request
	body []byte
	segs []string
}

// decode reads the JSON body into v; an empty body leaves v as it is. It
// answers 400 itself and returns false on invalid JSON.
func (c *controlCall) decode(v any) bool {
	if len(strings.TrimSpace(string(c.body))) == 0 {
		return true
	}
	if err := json.Unmarshal(c.body, v); err != nil {
		controlErr(c.w, 400, "invalid JSON: "+err.Error())
		return false
	}
	return true
}

// decodeSwitch reads {"<field>": true|false}, field being "enabled" or
// "echo"; ok is false when it answered 400 already.
func (c *controlCall) decodeSwitch(field string) (on, ok bool) {
	var v *bool
	if field == "echo" {
		var in struct {
			Echo *bool `json:"echo"`
		}
		ok = c.decode(&in)
		v = in.Echo
	} else {
		var in struct {
			Enabled *bool `json:"enabled"`
		}
		ok = c.decode(&in)
		v = in.Enabled
	}
	if !ok {
		return false, false
	}
	if v == nil {
		controlErr(c.w, 400, `send {"`+field+`": true|false}`)
		return false, false
	}
	return *v, true
}

func (b *Bank) serveControl(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		controlErr(w, 400, "body too large")
		return
	}
	path := strings.TrimRight(r.URL.Path, "/")
	c := &controlCall{w: w, r: r, body: body, segs: strings.Split(strings.TrimPrefix(path, "/_sandbox/"), "/")}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.serveSwitchLocked(c) {
		b.serveActionLocked(c)
	}
}

// serveSwitchLocked answers the control endpoints that turn one behaviour
// of the bank on or off; it returns false for any other endpoint.
func (b *Bank) serveSwitchLocked(c *controlCall) bool {
	if c.r.Method != "PUT" || len(c.segs) != 1 {
		return false
	}
	field := "enabled"
	var set func(on bool) obj
	switch c.segs[0] {
	case "rate-limits":
		set = func(on bool) obj {
			b.rateOn = on
			b.hits = map[string][]time.Time{}
			return obj{"enabled": b.rateOn}
		}
	case "callback-signing":
		set = func(on bool) obj { b.signCB = on; return obj{"enabled": b.signCB} }
	case "token-state":
		set = func(on bool) obj { b.noTokenState = !on; return obj{"enabled": !b.noTokenState} }
	case "null-objects":
		set = func(on bool) obj { b.st.nullEmpty = on; return obj{"enabled": b.st.nullEmpty} }
	case "merchant-reference":
		field = "echo"
		set = func(on bool) obj { b.st.dropMerchantRef = !on; return obj{"echo": on} }
	default:
		return false
	}
	if on, ok := c.decodeSwitch(field); ok {
		writeJSON(c.w, 200, set(on))
	}
	return true
}

// serveActionLocked answers the control endpoints that are not switches.
func (b *Bank) serveActionLocked(c *controlCall) {
	w, segs := c.w, c.segs
	key := c.r.Method + " " + segs[0]
	switch {
	case key == "GET users" && len(segs) == 1:
		writeJSON(w, 200, b.usersLocked())
	case key == "PUT users" && len(segs) == 3 && segs[2] == "session-timeout":
		b.setSessionTimeoutLocked(w, segs[1], c.body)
	case key == "POST faults":
		b.addFaultLocked(c)
	case key == "DELETE faults":
		b.faults = nil
		writeJSON(w, 200, obj{"faults": 0})
	case key == "PUT client-ip":
		b.setClientIPLocked(c)
	case key == "POST clock":
		b.advanceClockLocked(c)
	case key == "GET stats":
		writeJSON(w, 200, obj{"requests": b.stats})
	case key == "DELETE stats":
		b.stats = map[string]int{}
		writeJSON(w, 200, obj{"requests": b.stats})
	case c.r.Method == "POST" && (segs[0] == "draft-payments" || segs[0] == "psp-draft-payments") && len(segs) == 3:
		b.answerDraftControlLocked(c)
	case key == "POST oauth" && len(segs) == 2 && segs[1] == "authorize":
		b.authorizeControlLocked(c)
	case key == "POST oauth" && len(segs) == 2 && segs[1] == "revoke":
		var in struct {
			UserID   int64  `json:"user_id"`
			ClientID string `json:"client_id"`
		}
		if !c.decode(&in) {
			return
		}
		writeJSON(w, 200, obj{"revoked": b.revokeLocked(in.UserID, in.ClientID)})
	case key == "GET callbacks":
		out := append([]callbackRecord{}, b.deliveries...)
		writeJSON(w, 200, out)
	default:
		controlErr(w, 404, "unknown control endpoint")
	}
}

// addFaultLocked arms a fault (POST /_sandbox/faults).
func (b *Bank) addFaultLocked(c *controlCall) {
	var f fault
	if !c.decode(&f) {
		return
	}
	if !faultKinds[f.Kind] || f.Path == "" || f.Count < 0 {
		controlErr(c.w, 400, "a fault needs a path, a count >= 0 and a kind: latency, status, drop, drop_before, bad_signature, no_signature or expire_session")
		return
	}
	if f.Kind == "status" && f.Status == 0 {
		controlErr(c.w, 400, "a status fault needs a status")
		return
	}
	f.left, f.unlimited = f.Count, f.Count == 0
	b.faults = append(b.faults, &f)
	writeJSON(c.w, 200, obj{"faults": len(b.faults)})
}

// setClientIPLocked sets the apparent source IP of loopback callers, so a
// test can move the TPP to another egress IP. Only a loopback caller may
// set it.
func (b *Bank) setClientIPLocked(c *controlCall) {
	var in struct {
		IP string `json:"ip"`
	}
	if !c.decode(&in) {
		return
	}
	if !isLoopbackHost(remoteIP(c.r)) {
		controlErr(c.w, 403, "only a loopback caller may set the apparent client IP")
		return
	}
	if in.IP != "" && net.ParseIP(in.IP) == nil {
		controlErr(c.w, 400, `send {"ip": "<address>"} or {"ip": ""} to reset`)
		return
	}
	b.apparentIP = in.IP
	writeJSON(c.w, 200, obj{"ip": b.apparentIP})
}

// advanceClockLocked moves the bank's clock forward (POST /_sandbox/clock).
func (b *Bank) advanceClockLocked(c *controlCall) {
	var in struct {
		AdvanceSeconds int64 `json:"advance_seconds"`
	}
	if !c.decode(&in) {
		return
	}
	if in.AdvanceSeconds < 0 {
		controlErr(c.w, 400, "the clock only moves forward")
		return
	}
	b.offset += time.Duration(in.AdvanceSeconds) * time.Second
	close(b.clockMoved) // wakes callback retries waiting on the clock
	b.clockMoved = make(chan struct{})
	writeJSON(c.w, 200, obj{"now": ts(b.now())})
}

// answerDraftControlLocked accepts or rejects a (PSP) draft payment as its
// user would: POST /_sandbox/{draft-payments,psp-draft-payments}/<id>/{accept,reject}.
func (b *Bank) answerDraftControlLocked(c *controlCall) {
	segs := c.segs
	id, err := strconv.ParseInt(segs[1], 10, 64)
	if err != nil || (segs[2] != "accept" && segs[2] != "reject") {
		controlErr(c.w, 404, "unknown control endpoint")
		return
	}
	psp := segs[0] == "psp-draft-payments"
	out, rep := b.answerDraftLocked(psp, id, 0, segs[2] == "accept")
	switch {
	case rep == nil:
		writeJSON(c.w, 200, out)
	case rep.status == 404 && psp:
		controlErr(c.w, 404, "no such PSP draft payment")
	case rep.status == 404:
		controlErr(c.w, 404, "no such draft payment")
	default:
		writeJSON(c.w, 409, rep.body)
	}
}

// authorizeControlLocked decides an OAuth authorization as the user would
// on bunq's page (POST /_sandbox/oauth/authorize) and returns where the
// browser would be sent.
func (b *Bank) authorizeControlLocked(c *controlCall) {
	var in struct {
		ClientID    string `json:"client_id"`
		RedirectURI string `json:"redirect_uri"`
		State       string `json:"state"`
		UserID      int64  `json:"user_id"`
		Decision    string `json:"decision"`
	}
	if !c.decode(&in) {
		return
	}
	oc, problem := b.st.checkAuthRequest(in.ClientID, in.RedirectURI)
	if problem != "" {
		controlErr(c.w, 400, problem)
		return
	}
	u := b.st.sandboxUser(in.UserID)
	if u == nil {
		controlErr(c.w, 400, "no such sandbox user")
		return
	}
	if in.Decision == "" {
		in.Decision = "approve"
	}
	if in.Decision != "approve" && in.Decision != "deny" {
		controlErr(c.w, 400, `decision must be "approve" or "deny"`)
		return
	}
	ds := b.st.pspDraftsToAuthorize(oc.pspID, u, b.now())
	writeJSON(c.w, 200, obj{"redirect_url": b.decideLocked(oc, in.RedirectURI, in.State, u, in.Decision == "approve", ds)})
}

type controlAccount struct {
	ID          int64  `json:"id"`
	Type        string `json:"type"`
	IBAN        string `json:"iban"`
	Description string `json:"description"`
	Balance     obj    `json:"balance"`
	Status      string `json:"status"`
}

type controlUser struct {
	ID          int64            `json:"id"`
	DisplayName string           `json:"display_name"`
	Email       string           `json:"email"`
	APIKey      string           `json:"api_key"`
	Accounts    []controlAccount `json:"accounts"`
}

// usersLocked lists persons and companies with their accounts.
func (b *Bank) usersLocked() []controlUser {
	out := []controlUser{}
	for _, id := range b.st.order {
		u := b.st.sandboxUser(id)
		if u == nil {
			continue
		}
		cu := controlUser{ID: u.id, DisplayName: u.name, Email: u.email, APIKey: u.apiKey, Accounts: []controlAccount{}}
		for _, a := range b.st.accountsOf(u.id) {
			cu.Accounts = append(cu.Accounts, controlAccount{a.id, a.kind, a.iban, a.description, amount(a.balance, "EUR"), a.status})
		}
		out = append(out, cu)
	}
	return out
}

// UserInfo is a sandbox user as GET /_sandbox/users shows it.
type UserInfo struct {
	ID          int64
	DisplayName string
	Email       string
	APIKey      string
}

// Users lists the sandbox persons and companies with their API keys (for
// printing credentials at start-up).
func (b *Bank) Users() ([]UserInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []UserInfo
	for _, u := range b.usersLocked() {
		out = append(out, UserInfo{u.ID, u.DisplayName, u.Email, u.APIKey})
	}
	return out, nil
}

// setSessionTimeoutLocked changes a user's auto-logout setting, which bunq
// shows as session_timeout (§3.1): for a PSP the lifetime of its sessions
// after the PSD2 key's first, for others of every new session.
func (b *Bank) setSessionTimeoutLocked(w http.ResponseWriter, idText string, body []byte) {
	var in struct {
		Seconds int `json:"seconds"`
	}
	id, err := strconv.ParseInt(idText, 10, 64)
	u := b.st.users[id]
	if err != nil || u == nil {
		controlErr(w, 404, "no such user")
		return
	}
	if json.Unmarshal(body, &in) != nil || in.Seconds < 60 {
		controlErr(w, 400, `send {"seconds": <at least 60>}`)
		return
	}
	if u.kind == "UserPaymentServiceProvider" {
		u.autoLogout = in.Seconds
	} else {
		u.sessionTimeout = in.Seconds
	}
	u.updated = b.now()
	writeJSON(w, 200, obj{"id": u.id, "session_timeout": in.Seconds})
}
