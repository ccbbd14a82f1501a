package sandbox

import (
	"cmp"
	"net/url"
	"slices"
	"strings"
	"time"
)

// PSD2 endpoints: PSP draft payments, confirmation of funds, OAuth clients
// and their callback URLs (docs/bunq-api.md §4.1, §5.4, §5.5).

// psp returns the session's PSP user, or a 403 for other users.
func (c *call) psp() (*user, *reply) {
	u, r := c.scope()
	if r != nil {
		return nil, r
	}
	if c.grant() != nil || u.kind != "UserPaymentServiceProvider" {
		rep := bunqErr(403, "This endpoint is only available to payment service providers.")
		return nil, &rep
	}
	return u, nil
}

// statusIn reads a body of the form {"status": "…"}.
func (c *call) statusIn() (string, *reply) {
	var in struct {
		Status string `json:"status"`
	}
	if r := decode(c.body, &in); r != nil {
		return "", r
	}
	return in.Status, nil
}

// pisp is psp for PSP draft payments, which are payment initiation: the
// PSP needs the PISP role.
func (c *call) pisp() (*user, *reply) {
	psp, r := c.psp()
	if r == nil {
		r = c.needRole("PISP")
	}
	return psp, r
}

func (b *Bank) hPSPDraftCreate(c *call) reply {
	psp, r := c.pisp()
	if r != nil {
		return *r
	}
	var in struct {
		SenderIBAN       string   `json:"sender_iban"`
		SenderName       string   `json:"sender_name"`
		CounterpartyIBAN string   `json:"counterparty_iban"`
		CounterpartyName string   `json:"counterparty_name"`
		Description      string   `json:"description"`
		Amount           amountIn `json:"amount"`
	}
	if r := decode(c.body, &in); r != nil {
		return *r
	}
	sender, err := canonicalIBAN(in.SenderIBAN)
	if err != nil {
		return badRequest("The field sender_iban is not a valid IBAN.")
	}
	if !bunqIBAN(sender) {
		return badRequest("The sender_iban must be an IBAN of a bunq account.")
	}
	counter, err := canonicalIBAN(in.CounterpartyIBAN)
	if err != nil {
		return badRequest("The field counterparty_iban is not a valid IBAN.")
	}
	if strings.TrimSpace(in.CounterpartyName) == "" {
		return badRequest("The field counterparty_name is required.")
	}
	if strings.TrimSpace(in.Description) == "" {
		return badRequest("The field description is required.")
	}
	amt, rerr := in.Amount.parse("amount")
	if rerr != nil {
		return *rerr
	}
	d := &pspDraft{
		id: c.st.next("psp-draft"), pspID: psp.id, senderIBAN: sender, senderName: in.SenderName,
		counterIBAN: counter, counterName: in.CounterpartyName, description: in.Description,
		amount: amt, currency: "EUR", status: "PENDING", created: c.now, updated: c.now,
	}
	c.st.pspDrafts[d.id] = d
	return idReply(d.id)
}

// The life of a PSP draft after creation: ACCEPTED becomes COMPLETED once
// the money has moved, and a draft nobody answers becomes EXPIRED
// (bunq-api.md §12.1 names both statuses; bunq documents neither delay,
// these are the emulator's). Changes happen when a draft is next looked
// at, on the emulator's clock; they send no callback.
const (
	pspDraftCompletes = time.Minute
	pspDraftExpires   = time.Hour
)

// agePSPDraft moves d along its life up to now.
func agePSPDraft(d *pspDraft, now time.Time) {
	switch {
	case d.status == "ACCEPTED" && !now.Before(d.updated.Add(pspDraftCompletes)):
		d.status, d.updated = "COMPLETED", d.updated.Add(pspDraftCompletes)
	case d.status == "PENDING" && !now.Before(d.created.Add(pspDraftExpires)):
		d.status, d.updated = "EXPIRED", d.created.Add(pspDraftExpires)
	}
}

func (b *Bank) hPSPDraftList(c *call) reply {
	psp, r := c.pisp()
	if r != nil {
		return *r
	}
	ids := idsWhere(c.st.pspDrafts, func(d *pspDraft) bool {
		agePSPDraft(d, c.now)
		return d.pspID == psp.id
	})
	return c.listing(ids, func(id int64) obj {
		return item("PaymentServiceProviderDraftPayment", c.st.renderPSPDraft(c.st.pspDrafts[id]))
	})
}

func (c *call) pspDraft() (*pspDraft, *reply) {
	psp, r := c.pisp()
	if r != nil {
		return nil, r
	}
	d := c.st.pspDrafts[c.id("draftID")]
	if d == nil || d.pspID != psp.id {
		rep := notFound("Payment service provider draft payment")
		return nil, &rep
	}
	agePSPDraft(d, c.now)
	return d, nil
}

func (b *Bank) hPSPDraftGet(c *call) reply {
	d, r := c.pspDraft()
	if r != nil {
		return *r
	}
	return ok(item("PaymentServiceProviderDraftPayment", c.st.renderPSPDraft(d)))
}

func (b *Bank) hPSPDraftUpdate(c *call) reply {
	d, r := c.pspDraft()
	if r != nil {
		return *r
	}
	status, r := c.statusIn()
	if r != nil {
		return *r
	}
	if status != "REJECTED" && status != "CANCELLED" {
		return badRequest("The status can only be set to REJECTED or CANCELLED by update.")
	}
	if r := b.closePSPDraftLocked(d, status, c.now); r != nil {
		return *r
	}
	return idReply(d.id)
}

// acceptPSPDraftLocked pays a pending PSP draft from the sender's account.
// userID, when not 0, must own that account (the approving user).
func (b *Bank) acceptPSPDraftLocked(d *pspDraft, userID int64, now time.Time) *reply {
	st := b.st
	if r := stillPending(d.status, "accepted"); r != nil {
		return r
	}
	a := st.accountByIBAN(d.senderIBAN)
	if a == nil || (userID != 0 && !a.heldBy(userID)) {
		r := badRequest("The sender IBAN does not belong to an account of this user.")
		return &r
	}
	cp := counterparty{iban: d.counterIBAN, name: d.counterName, acc: st.accountByIBAN(d.counterIBAN)}
	p, r := st.pay(a, d.amount, cp, d.description, "", now)
	if r != nil {
		return r
	}
	d.paymentID, d.status, d.updated = p.id, "ACCEPTED", now
	b.notifyPSPDraftLocked(d, "DRAFT_PAYMENT_ACCEPTED")
	return nil
}

func (b *Bank) closePSPDraftLocked(d *pspDraft, status string, now time.Time) *reply {
	if r := stillPending(d.status, "changed"); r != nil {
		return r
	}
	d.status, d.updated = status, now
	b.notifyPSPDraftLocked(d, "DRAFT_PAYMENT_"+status)
	return nil
}

func (b *Bank) hConfirmFunds(c *call) reply {
	u, r := c.scope()
	if r != nil {
		return *r
	}
	var in struct {
		PointerIBAN pointer  `json:"pointer_iban"`
		Amount      amountIn `json:"amount"`
	}
	if r := decode(c.body, &in); r != nil {
		return *r
	}
	if in.PointerIBAN.Value == "" {
		return badRequest("The field pointer_iban is required.")
	}
	amt, rerr := in.Amount.parse("amount")
	if rerr != nil {
		return *rerr
	}
	var a *account
	if in.PointerIBAN.Type == "" || strings.EqualFold(in.PointerIBAN.Type, "IBAN") {
		iban, err := canonicalIBAN(in.PointerIBAN.Value)
		if err != nil {
			return badRequest("The field pointer_iban does not hold a valid IBAN.")
		}
		a = c.st.accountByIBAN(iban)
	} else if owner := c.st.userByAlias(in.PointerIBAN); owner != nil {
		a = c.st.primaryAccount(owner)
	}
	// A PSP may ask about any account; a user or OAuth session only about
	// the user's own.
	if a == nil || (u.kind != "UserPaymentServiceProvider" && !a.heldBy(u.id)) {
		return notFound("Monetary account")
	}
	sufficient := a.status == "ACTIVE" && a.balance+a.overdraft >= amt
	if c.b.cfg.FundsAnswer == "id" {
		// bunq's PISP page and OpenAPI document: only the new object's id.
		return idReply(c.st.next("funds"))
	}
	return ok(item("ConfirmationOfFunds", obj{"has_sufficient_funds": sufficient}))
}

func (st *state) clientOf(pspID int64) *oauthClient {
	for _, oc := range st.clients {
		if oc.pspID == pspID {
			return oc
		}
	}
	return nil
}

func (b *Bank) hOauthClientCreate(c *call) reply {
	psp, r := c.psp()
	if r != nil {
		return *r
	}
	status, r := c.statusIn()
	if r != nil {
		return *r
	}
	if c.st.clientOf(psp.id) != nil {
		return badRequest("You can have 1 OAuth Client at a time.")
	}
	if status == "" {
		status = "ACTIVE"
	}
	oc := &oauthClient{
		id: c.st.next("oauth-client"), pspID: psp.id, clientID: randomHex(64), secret: randomHex(64),
		status: status, created: c.now, updated: c.now,
	}
	c.st.clients[oc.clientID] = oc
	return idReply(oc.id)
}

func (c *call) oauthClient() (*oauthClient, *reply) {
	psp, r := c.psp()
	if r != nil {
		return nil, r
	}
	oc := c.st.clientOf(psp.id)
	if oc == nil || oc.id != c.id("clientID") {
		rep := notFound("OAuth client")
		return nil, &rep
	}
	return oc, nil
}

func (b *Bank) hOauthClientList(c *call) reply {
	psp, r := c.psp()
	if r != nil {
		return *r
	}
	var elems []obj
	if oc := c.st.clientOf(psp.id); oc != nil {
		elems = append(elems, item("OauthClient", c.st.renderOauthClient(oc)))
	}
	return unpaged(elems)
}

func (b *Bank) hOauthClientGet(c *call) reply {
	oc, r := c.oauthClient()
	if r != nil {
		return *r
	}
	return ok(item("OauthClient", c.st.renderOauthClient(oc)))
}

func (b *Bank) hOauthClientUpdate(c *call) reply {
	oc, r := c.oauthClient()
	if r != nil {
		return *r
	}
	status, r := c.statusIn()
	if r != nil {
		return *r
	}
	switch status {
	case "":
	case "ACTIVE", "CANCELLED":
		oc.status = status
	default:
		return badRequest("The status of an OAuth client can be ACTIVE or CANCELLED.")
	}
	oc.updated = c.now
	return idReply(oc.id)
}

// callbackURLIn reads the body of a callback URL create or update.
func (c *call) callbackURLIn() (string, *reply) {
	var in struct {
		URL string `json:"url"`
	}
	if r := decode(c.body, &in); r != nil {
		return "", r
	}
	u, err := url.Parse(in.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
		r := badRequest("The field url must be an absolute http(s) URL.")
		return "", &r
	}
	return in.URL, nil
}

func (b *Bank) hCallbackURLCreate(c *call) reply {
	oc, r := c.oauthClient()
	if r != nil {
		return *r
	}
	u, r := c.callbackURLIn()
	if r != nil {
		return *r
	}
	cu := &callbackURL{id: c.st.next("callback-url"), url: u, created: c.now, updated: c.now}
	oc.callbacks = append(oc.callbacks, cu)
	return idReply(cu.id)
}

func (b *Bank) hCallbackURLList(c *call) reply {
	oc, r := c.oauthClient()
	if r != nil {
		return *r
	}
	var elems []obj
	for _, cu := range oc.callbacks {
		elems = append(elems, item("OauthCallbackUrl", renderCallbackURL(cu)))
	}
	return unpaged(elems)
}

func (c *call) callbackURL() (*oauthClient, int, *reply) {
	oc, r := c.oauthClient()
	if r != nil {
		return nil, 0, r
	}
	for i, cu := range oc.callbacks {
		if cu.id == c.id("urlID") {
			return oc, i, nil
		}
	}
	rep := notFound("Callback URL")
	return nil, 0, &rep
}

func (b *Bank) hCallbackURLGet(c *call) reply {
	oc, i, r := c.callbackURL()
	if r != nil {
		return *r
	}
	return ok(item("OauthCallbackUrl", renderCallbackURL(oc.callbacks[i])))
}

func (b *Bank) hCallbackURLUpdate(c *call) reply {
	oc, i, r := c.callbackURL()
	if r != nil {
		return *r
	}
	u, r := c.callbackURLIn()
	if r != nil {
		return *r
	}
	oc.callbacks[i].url, oc.callbacks[i].updated = u, c.now
	return idReply(oc.callbacks[i].id)
}

func (b *Bank) hCallbackURLDelete(c *call) reply {
	oc, i, r := c.callbackURL()
	if r != nil {
		return *r
	}
	oc.callbacks = append(oc.callbacks[:i:i], oc.callbacks[i+1:]...)
	return ok()
}

// Grants: what the /auth page, the control endpoints and the app page do.

// checkAuthRequest validates client_id and redirect_uri as /auth does.
func (st *state) checkAuthRequest(clientID, redirectURI string) (*oauthClient, string) {
	oc := st.clients[clientID]
	if oc == nil || oc.status != "ACTIVE" {
		return nil, "Unknown or inactive client_id."
	}
	for _, cu := range oc.callbacks {
		if cu.url == redirectURI {
			return oc, ""
		}
	}
	return nil, "The redirect_uri is not registered for this client."
}

// debitsUser reports whether d is pspID's and debits one of userID's
// accounts.
func (st *state) debitsUser(d *pspDraft, pspID, userID int64) bool {
	a := st.accountByIBAN(d.senderIBAN)
	return d.pspID == pspID && a != nil && a.heldBy(userID)
}

// pspDraftsToAuthorize returns the PSP draft payments bunq shows on an
// authorization page of pspID when u signs in: all of the PSP's pending
// drafts from u's accounts, oldest first, whatever the authorization is
// for (the request itself names no draft; bunq-api.md §12.5).
func (st *state) pspDraftsToAuthorize(pspID int64, u *user, now time.Time) []*pspDraft {
	var out []*pspDraft
	for _, d := range st.pspDrafts {
		agePSPDraft(d, now)
		if d.status == "PENDING" && st.debitsUser(d, pspID, u.id) {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b *pspDraft) int { return cmp.Compare(a.id, b.id) })
	return out
}

// decideLocked records the user's decision on an authorization request
// and returns the redirect URL. The decision also approves or rejects ds,
// the PSP draft payments the page showed, all together; never a draft
// the page did not show.
func (b *Bank) decideLocked(oc *oauthClient, redirectURI, state string, u *user, approve bool, ds []*pspDraft) string {
	st := b.st
	now := b.now()
	q := url.Values{}
	if approve {
		code := randomHex(64)
		st.codes[code] = &authCode{clientID: oc.clientID, redirectURI: redirectURI, state: state, userID: u.id, expires: now.Add(10 * time.Minute)}
		q.Set("code", code)
		for _, d := range ds {
			if d.status != "PENDING" {
				continue
			}
			if r := b.acceptPSPDraftLocked(d, u.id, now); r != nil {
				b.log.Info("sandbox: PSP draft payment not executed on approval", "draft", d.id)
			}
		}
	} else {
		q.Set("error", "access_denied")
		for _, d := range ds {
			if d.status == "PENDING" {
				_ = b.closePSPDraftLocked(d, "REJECTED", now)
			}
		}
	}
	if state != "" {
		q.Set("state", state)
	}
	sep := "?"
	if strings.Contains(redirectURI, "?") {
		sep = "&"
	}
	return redirectURI + sep + q.Encode()
}

// revokeLocked ends every grant userID gave to clientID: their sessions
// and access tokens die and the PSP gets an OAUTH callback.
func (b *Bank) revokeLocked(userID int64, clientID string) int {
	st := b.st
	n := 0
	for _, g := range st.grants {
		if g.userID != userID || g.clientID != clientID || g.revoked {
			continue
		}
		g.revoked = true
		delete(st.apiKeys, g.token)
		for tok, s := range st.sessions {
			if s.userID == g.id {
				delete(st.sessions, tok)
			}
		}
		b.notifyGrantLocked(g)
		n++
	}
	return n
}
