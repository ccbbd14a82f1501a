package sandbox

import (
	"encoding/json"
	"net/url"
	"strings"
	"time"
)

// Banking endpoints: monetary accounts, payments, request inquiries (sugar
// daddy), draft payments, scheduled payments, notification filters.

func (b *Bank) hAccountList(kind string) func(*call) reply {
	return func(c *call) reply {
		u, r := c.scope()
		if r != nil {
			return *r
		}
		var ids []int64
		for _, a := range c.st.accountsOf(u.id) {
			if kind == "" || a.kind == kind {
				ids = append(ids, a.id)
			}
		}
		return c.listing(ids, func(id int64) obj {
			a := c.st.accounts[id]
			return item(a.kind, c.st.renderAccount(a))
		})
	}
}

func (b *Bank) hAccountGet(kind string) func(*call) reply {
	return func(c *call) reply {
		_, a, r := c.account(kind)
		if r != nil {
			return *r
		}
		return ok(item(a.kind, c.st.renderAccount(a)))
	}
}

type accountIn struct {
	Currency    string    `json:"currency"`
	Description string    `json:"description"`
	DailyLimit  *amountIn `json:"daily_limit"`
	Status      string    `json:"status"`
	SavingsGoal *amountIn `json:"savings_goal"`
	Setting     struct {
		Color string `json:"color"`
	} `json:"setting"`
}

func (b *Bank) hAccountCreate(kind string) func(*call) reply {
	return func(c *call) reply {
		u, r := c.scope()
		if r != nil {
			return *r
		}
		if u.kind == "UserPaymentServiceProvider" {
			return bunqErr(403, "A payment service provider cannot hold monetary accounts.")
		}
		var in accountIn
		if r := decode(c.body, &in); r != nil {
			return *r
		}
		if in.Currency == "" {
			return badRequest("The field currency is required.")
		}
		if in.Currency != "EUR" {
			return badRequest("Currency " + in.Currency + " is not supported.")
		}
		desc := in.Description
		if desc == "" {
			desc = "bunq account"
		}
		a := c.st.newAccount(kind, u, desc, c.now)
		if in.DailyLimit != nil {
			if v, rerr := in.DailyLimit.parse("daily_limit"); rerr == nil {
				a.dailyLimit = v
			}
		}
		if in.SavingsGoal != nil && kind == "MonetaryAccountSavings" {
			if v, rerr := in.SavingsGoal.parse("savings_goal"); rerr == nil {
				a.savingsGoal = v
			}
		}
		if in.Setting.Color != "" {
			a.color = in.Setting.Color
		}
		return idReply(a.id)
	}
}

func (b *Bank) hAccountUpdate(kind string) func(*call) reply {
	return func(c *call) reply {
		_, a, r := c.account(kind)
		if r != nil {
			return *r
		}
		var in accountIn
		if r := decode(c.body, &in); r != nil {
			return *r
		}
		if in.Description != "" {
			a.description = in.Description
		}
		if in.DailyLimit != nil {
			v, rerr := in.DailyLimit.parse("daily_limit")
			if rerr != nil {
				return *rerr
			}
			a.dailyLimit = v
		}
		switch in.Status {
		case "", a.status:
		case "ACTIVE", "CANCELLED":
			a.status = in.Status
		default:
			return badRequest("The status " + in.Status + " cannot be set on a monetary account.")
		}
		a.updated = c.now
		return idReply(a.id)
	}
}

// Reading payments is account information: a PSD2 provider needs AISP.
func (b *Bank) hPaymentList(c *call) reply {
	_, a, r := c.accountAs("AISP")
	if r != nil {
		return *r
	}
	ids := make([]int64, len(a.payments))
	for i, p := range a.payments {
		ids[i] = p.id
	}
	return c.listing(ids, func(id int64) obj { return item("Payment", c.st.renderPayment(c.st.payments[id])) })
}

func (b *Bank) hPaymentGet(c *call) reply {
	_, a, r := c.accountAs("AISP")
	if r != nil {
		return *r
	}
	p := c.st.payments[c.id("paymentID")]
	if p == nil || p.accountID != a.id {
		return notFound("Payment")
	}
	return ok(item("Payment", c.st.renderPayment(p)))
}

// sugarDaddy is the sandbox's money source (§7).
const sugarDaddyEmail = "sugardaddy@bunq.com"

var sugarDaddyIBAN = makeIBAN("NL", "BUNQ", "2000000001")

func (st *state) userByAlias(p pointer) *user {
	v := strings.TrimSpace(p.Value)
	for _, id := range st.order {
		u := st.users[id]
		switch p.Type {
		case "EMAIL":
			if u.email != "" && strings.EqualFold(u.email, v) {
				return u
			}
		case "PHONE_NUMBER":
			if u.phone != "" && u.phone == v {
				return u
			}
		}
	}
	return nil
}

func (st *state) primaryAccount(u *user) *account {
	for _, a := range st.accountsOf(u.id) {
		if a.kind == "MonetaryAccountBank" && a.ownerID == u.id && a.status == "ACTIVE" {
			return a
		}
	}
	return nil
}

// counterparty is where a payment goes: an emulated account, or an
// account outside the bank (only debited here).
type counterparty struct {
	acc  *account
	iban string
	name string
}

// resolve checks a counterparty alias as bunq would before accepting a
// payment or draft.
func (st *state) resolve(p pointer) (counterparty, *reply) {
	fail := func(text string) (counterparty, *reply) {
		r := badRequest(text)
		return counterparty{}, &r
	}
	switch strings.ToUpper(p.Type) {
	case "IBAN":
		iban, err := canonicalIBAN(p.Value)
		if err != nil {
			return fail("The IBAN " + p.Value + " of the counterparty is not valid.")
		}
		if a := st.accountByIBAN(iban); a != nil {
			name := p.Name
			if name == "" {
				name = a.holder
			}
			return counterparty{acc: a, iban: iban, name: name}, nil
		}
		if strings.TrimSpace(p.Name) == "" {
			return fail("The name of the counterparty is required for a payment to an IBAN.")
		}
		return counterparty{iban: iban, name: p.Name}, nil
	case "EMAIL", "PHONE_NUMBER":
		p.Type = strings.ToUpper(p.Type)
		if p.Type == "EMAIL" && strings.EqualFold(strings.TrimSpace(p.Value), sugarDaddyEmail) {
			return counterparty{iban: sugarDaddyIBAN, name: "Sugar Daddy"}, nil
		}
		if u := st.userByAlias(p); u != nil {
			if a := st.primaryAccount(u); a != nil {
				return counterparty{acc: a, iban: a.iban, name: a.holder}, nil
			}
		}
		return fail("No bunq user was found for the counterparty alias " + p.Value + ".")
	case "":
		return fail("The field counterparty_alias is required.")
	}
	return fail("The alias type " + p.Type + " is not supported.")
}

// pay executes a payment from a: both sides for an emulated counterparty,
// only the debit for one outside the bank. Overdraft is limited.
func (st *state) pay(a *account, amt int64, cp counterparty, desc, ref string, now time.Time) (*payment, *reply) {
	if a.status != "ACTIVE" {
		r := badRequest("The monetary account is not active.")
		return nil, &r
	}
	if cp.acc != nil && cp.acc.id == a.id {
		r := badRequest("A payment to the same monetary account is not possible.")
		return nil, &r
	}
	if a.balance-amt < -a.overdraft {
		r := badRequest(txtNoFunds)
		return nil, &r
	}
	var out *payment
	if cp.acc != nil {
		out, _ = st.transfer(a, cp.acc, amt, desc, now)
	} else {
		out = st.book(a, -amt, cp.iban, cp.name, 0, desc, "EBA_SCT", now)
	}
	out.merchantRef = ref
	return out, nil
}

type paymentIn struct {
	Amount            amountIn `json:"amount"`
	CounterpartyAlias pointer  `json:"counterparty_alias"`
	Description       string   `json:"description"`
	MerchantReference string   `json:"merchant_reference"`
}

func (b *Bank) hPaymentCreate(c *call) reply {
	_, a, r := c.account("")
	if r != nil {
		return *r
	}
	var in paymentIn
	if r := decode(c.body, &in); r != nil {
		return *r
	}
	amt, rerr := in.Amount.parse("amount")
	if rerr != nil {
		return *rerr
	}
	cp, rerr := c.st.resolve(in.CounterpartyAlias)
	if rerr != nil {
		return *rerr
	}
	// OAuth connections may move money only between the user's own
	// accounts (§4.4), and PSD2 providers, the only OAuth clients here, not
	// at all (§5.3): they initiate payments as draft payments.
	if c.grant() != nil {
		return bunqErr(403, "A payment service provider cannot create payments; use a draft payment.")
	}
	p, rerr := c.st.pay(a, amt, cp, in.Description, in.MerchantReference, c.now)
	if rerr != nil {
		return *rerr
	}
	return idReply(p.id)
}

func (b *Bank) hInquiryCreate(c *call) reply {
	u, a, r := c.account("")
	if r != nil {
		return *r
	}
	var in struct {
		AmountInquired    amountIn `json:"amount_inquired"`
		CounterpartyAlias pointer  `json:"counterparty_alias"`
		Description       string   `json:"description"`
	}
	if r := decode(c.body, &in); r != nil {
		return *r
	}
	amt, rerr := in.AmountInquired.parse("amount_inquired")
	if rerr != nil {
		return *rerr
	}
	if in.CounterpartyAlias.Value == "" {
		return badRequest("The field counterparty_alias is required.")
	}
	q := &requestInquiry{
		id: c.st.next("inquiry"), accountID: a.id, creatorID: u.id, created: c.now, updated: c.now,
		amount: amt, currency: "EUR", alias: in.CounterpartyAlias, description: in.Description, status: "PENDING",
	}
	if strings.EqualFold(in.CounterpartyAlias.Type, "EMAIL") && strings.EqualFold(strings.TrimSpace(in.CounterpartyAlias.Value), sugarDaddyEmail) {
		if amt > 50000 {
			return badRequest("The sugar daddy gives at most EUR 500.00 per request.")
		}
		p := c.st.book(a, amt, sugarDaddyIBAN, "Sugar Daddy", 0, in.Description, "BUNQ", c.now)
		p.subType = "REQUEST"
		q.status = "ACCEPTED"
	}
	c.st.inquiries[q.id] = q
	return idReply(q.id)
}

func (b *Bank) hInquiryList(c *call) reply {
	_, a, r := c.account("")
	if r != nil {
		return *r
	}
	ids := idsWhere(c.st.inquiries, func(q *requestInquiry) bool { return q.accountID == a.id })
	return c.listing(ids, func(id int64) obj { return item("RequestInquiry", c.st.renderInquiry(c.st.inquiries[id])) })
}

func (b *Bank) hInquiryGet(c *call) reply {
	_, a, r := c.account("")
	if r != nil {
		return *r
	}
	q := c.st.inquiries[c.id("inquiryID")]
	if q == nil || q.accountID != a.id {
		return notFound("Request inquiry")
	}
	return ok(item("RequestInquiry", c.st.renderInquiry(q)))
}

type entryIn struct {
	Amount            amountIn `json:"amount"`
	CounterpartyAlias pointer  `json:"counterparty_alias"`
	Description       string   `json:"description"`
	MerchantReference string   `json:"merchant_reference"`
}

// entries validates payment entries of a draft or scheduled payment. For
// scheduled payments (scheduleOnly) an EMAIL or PHONE_NUMBER alias need not
// belong to a bunq user: bunq pays those through bunq.to when the schedule
// runs, which the emulator does not execute.
func (c *call) entries(in []entryIn, field string, scheduleOnly bool) ([]draftEntry, *reply) {
	if len(in) == 0 {
		r := badRequest("The field " + field + " is required.")
		return nil, &r
	}
	var out []draftEntry
	for _, e := range in {
		amt, rerr := e.Amount.parse("amount")
		if rerr != nil {
			return nil, rerr
		}
		if scheduleOnly && validLooseAlias(e.CounterpartyAlias) {
			// accepted as is
		} else if _, rerr := c.st.resolve(e.CounterpartyAlias); rerr != nil {
			return nil, rerr
		}
		p := e.CounterpartyAlias
		p.Type = strings.ToUpper(p.Type)
		if p.Type == "IBAN" {
			p.Value, _ = canonicalIBAN(p.Value)
		}
		out = append(out, draftEntry{id: c.st.next("payment"), amount: amt, currency: "EUR", alias: p,
			description: e.Description, merchantRef: e.MerchantReference})
	}
	return out, nil
}

// Draft payments are payment initiation: a PSD2 provider needs PISP.
func (b *Bank) hDraftCreate(c *call) reply {
	u, a, r := c.accountAs("PISP")
	if r != nil {
		return *r
	}
	var in struct {
		Entries                 []entryIn       `json:"entries"`
		NumberOfRequiredAccepts *int            `json:"number_of_required_accepts"`
		Schedule                json.RawMessage `json:"schedule"`
	}
	if r := decode(c.body, &in); r != nil {
		return *r
	}
	if in.NumberOfRequiredAccepts != nil && *in.NumberOfRequiredAccepts != 1 {
		return badRequest("Currently only 1 is valid for number_of_required_accepts.")
	}
	entries, rerr := c.entries(in.Entries, "entries", false)
	if rerr != nil {
		return *rerr
	}
	d := &draftPayment{
		id: c.st.next("draft"), accountID: a.id, creatorID: u.id, status: "PENDING",
		entries: entries, created: c.now, updated: c.now,
	}
	if s := strings.TrimSpace(string(in.Schedule)); s != "" && s != "null" {
		d.schedule = in.Schedule
	}
	if g := c.grant(); g != nil {
		d.grantID = g.id
	}
	c.st.drafts[d.id] = d
	b.notifyDraftLocked(d, "DRAFT_PAYMENT_CREATED")
	return idReply(d.id)
}

func (b *Bank) hDraftList(c *call) reply {
	_, a, r := c.accountAs("PISP")
	if r != nil {
		return *r
	}
	ids := idsWhere(c.st.drafts, func(d *draftPayment) bool { return d.accountID == a.id })
	return c.listing(ids, func(id int64) obj { return item("DraftPayment", c.st.renderDraft(c.st.drafts[id])) })
}

func (c *call) draft() (*user, *draftPayment, *reply) {
	u, a, r := c.accountAs("PISP")
	if r != nil {
		return nil, nil, r
	}
	d := c.st.drafts[c.id("draftID")]
	if d == nil || d.accountID != a.id {
		rep := notFound("Draft payment")
		return nil, nil, &rep
	}
	return u, d, nil
}

func (b *Bank) hDraftGet(c *call) reply {
	_, d, r := c.draft()
	if r != nil {
		return *r
	}
	return ok(item("DraftPayment", c.st.renderDraft(d)))
}

func (b *Bank) hDraftUpdate(c *call) reply {
	u, d, r := c.draft()
	if r != nil {
		return *r
	}
	var in struct {
		Status                   string `json:"status"`
		PreviousUpdatedTimestamp string `json:"previous_updated_timestamp"`
	}
	if r := decode(c.body, &in); r != nil {
		return *r
	}
	if in.PreviousUpdatedTimestamp != "" && in.PreviousUpdatedTimestamp != ts(d.updated) {
		return badRequest("The draft payment was updated in the meantime; previous_updated_timestamp does not match.")
	}
	switch in.Status {
	case "ACCEPTED":
		// The user approves a draft in the bunq app, never the TPP
		// holding their grant (bunq-api.md §12.6).
		if c.grant() != nil {
			return bunqErr(403, "A draft payment can only be accepted by the user in the bunq app.")
		}
		// Accepting executes the payment, so it needs a signature (§2.2).
		if r := c.checkSignature(); r != nil {
			return *r
		}
		if r := b.acceptDraftLocked(d, u.id, c.now); r != nil {
			return *r
		}
	case "REJECTED", "CANCELLED":
		if r := b.closeDraftLocked(d, in.Status, u.id, c.now); r != nil {
			return *r
		}
	case "":
		return badRequest("The field status is required.")
	default:
		return badRequest("A draft payment can only be updated to ACCEPTED, REJECTED or CANCELLED.")
	}
	return idReply(d.id)
}

// acceptDraftLocked executes a pending draft payment. A draft with a
// schedule becomes a scheduled payment instead of paying now.
func (b *Bank) acceptDraftLocked(d *draftPayment, responder int64, now time.Time) *reply {
	st := b.st
	if r := stillPending(d.status, "accepted"); r != nil {
		return r
	}
	a := st.accounts[d.accountID]
	if len(d.schedule) > 0 {
		sp := &schedulePayment{id: st.next("schedule"), accountID: a.id, entries: d.entries, schedule: d.schedule, created: now}
		st.schedules[sp.id] = sp
	} else {
		var total int64
		for _, e := range d.entries {
			total += e.amount
		}
		if a.balance-total < -a.overdraft {
			r := badRequest(txtNoFunds)
			return &r
		}
		for _, e := range d.entries {
			cp, r := st.resolve(e.alias)
			if r != nil {
				return r
			}
			p, r := st.pay(a, e.amount, cp, e.description, e.merchantRef, now)
			if r != nil {
				return r
			}
			d.paymentIDs = append(d.paymentIDs, p.id)
		}
	}
	d.status, d.responderID, d.updated = "ACCEPTED", responder, now
	b.notifyDraftLocked(d, "DRAFT_PAYMENT_ACCEPTED")
	return nil
}

func (b *Bank) closeDraftLocked(d *draftPayment, status string, responder int64, now time.Time) *reply {
	if r := stillPending(d.status, "changed"); r != nil {
		return r
	}
	d.status, d.responderID, d.updated = status, responder, now
	b.notifyDraftLocked(d, "DRAFT_PAYMENT_"+status)
	return nil
}

// stillPending answers 400 unless a draft or PSP draft payment is still
// PENDING; done says what can no longer be done to it.
func stillPending(status, done string) *reply {
	if status == "PENDING" {
		return nil
	}
	r := badRequest("The draft payment is " + status + " and can no longer be " + done + ".")
	return &r
}

// answerDraftLocked accepts or rejects the draft payment id (psp: the PSP
// draft payment id) as userID does in the app, who must hold the debited
// account. userID 0 answers without that check, as the account's owner:
// the control endpoints do. It returns the draft's rendering, or a reply
// of 404 (no such draft), 403 (another user's) or 400 (not pending).
func (b *Bank) answerDraftLocked(psp bool, id, userID int64, accept bool) (obj, *reply) {
	st, now := b.st, b.now()
	fail := func(r reply) (obj, *reply) { return nil, &r }
	if psp {
		d := st.pspDrafts[id]
		if d == nil {
			return fail(notFound("Payment service provider draft payment"))
		}
		agePSPDraft(d, now)
		if a := st.accountByIBAN(d.senderIBAN); userID != 0 && (a == nil || !a.heldBy(userID)) {
			return fail(bunqErr(403, "This payment belongs to another user."))
		}
		var r *reply
		if accept {
			r = b.acceptPSPDraftLocked(d, userID, now)
		} else {
			r = b.closePSPDraftLocked(d, "REJECTED", now)
		}
		if r != nil {
			return nil, r
		}
		return st.renderPSPDraft(d), nil
	}
	d := st.drafts[id]
	if d == nil {
		return fail(notFound("Draft payment"))
	}
	a := st.accounts[d.accountID]
	if userID == 0 {
		userID = a.ownerID
	} else if !a.heldBy(userID) {
		return fail(bunqErr(403, "This payment belongs to another user."))
	}
	var r *reply
	if accept {
		r = b.acceptDraftLocked(d, userID, now)
	} else {
		r = b.closeDraftLocked(d, "REJECTED", userID, now)
	}
	if r != nil {
		return nil, r
	}
	return st.renderDraft(d), nil
}

func (b *Bank) hScheduleList(c *call) reply {
	_, a, r := c.account("")
	if r != nil {
		return *r
	}
	ids := idsWhere(c.st.schedules, func(sp *schedulePayment) bool { return sp.accountID == a.id })
	return c.listing(ids, func(id int64) obj { return item("Schedule", c.st.renderSchedule(c.st.schedules[id])) })
}

// hSchedulePaymentCreate stores a scheduled payment (or batch). The
// emulator records schedules but does not execute them over time.
func (b *Bank) hSchedulePaymentCreate(batch bool) func(*call) reply {
	return func(c *call) reply {
		_, a, r := c.account("")
		if r != nil {
			return *r
		}
		var in struct {
			Payment  *entryIn        `json:"payment"`
			Payments []entryIn       `json:"payments"`
			Schedule json.RawMessage `json:"schedule"`
		}
		if r := decode(c.body, &in); r != nil {
			return *r
		}
		raw, field := in.Payments, "payments"
		if !batch {
			raw, field = nil, "payment"
			if in.Payment != nil {
				raw = []entryIn{*in.Payment}
			}
		}
		entries, rerr := c.entries(raw, field, true)
		if rerr != nil {
			return *rerr
		}
		var sch struct {
			TimeStart      string `json:"time_start"`
			RecurrenceUnit string `json:"recurrence_unit"`
		}
		if len(in.Schedule) == 0 || json.Unmarshal(in.Schedule, &sch) != nil || sch.TimeStart == "" || sch.RecurrenceUnit == "" {
			return badRequest("The field schedule with time_start and recurrence_unit is required.")
		}
		sp := &schedulePayment{id: c.st.next("schedule"), accountID: a.id, entries: entries, schedule: in.Schedule, created: c.now, batch: batch}
		c.st.schedules[sp.id] = sp
		return idReply(sp.id)
	}
}

func (b *Bank) hSchedulePaymentList(c *call) reply {
	_, a, r := c.account("")
	if r != nil {
		return *r
	}
	ids := idsWhere(c.st.schedules, func(sp *schedulePayment) bool { return sp.accountID == a.id && !sp.batch })
	return c.listing(ids, func(id int64) obj { return item("SchedulePayment", c.st.renderSchedulePayment(c.st.schedules[id])) })
}

func (b *Bank) hSchedulePaymentGet(c *call) reply {
	_, a, r := c.account("")
	if r != nil {
		return *r
	}
	sp := c.st.schedules[c.id("scheduleID")]
	if sp == nil || sp.accountID != a.id || sp.batch {
		return notFound("Scheduled payment")
	}
	return ok(item("SchedulePayment", c.st.renderSchedulePayment(sp)))
}

// Notification filters are kept per session user id (a person, a PSP or
// a UserApiKey) and per monetary account.
func (b *Bank) hNotifSet(perAccount bool) func(*call) reply {
	return func(c *call) reply {
		var acc *account
		if perAccount {
			_, a, r := c.account("")
			if r != nil {
				return *r
			}
			acc = a
		} else if _, r := c.scope(); r != nil {
			return *r
		}
		var in struct {
			NotificationFilters []struct {
				Category           string `json:"category"`
				NotificationTarget string `json:"notification_target"`
			} `json:"notification_filters"`
		}
		if r := decode(c.body, &in); r != nil {
			return *r
		}
		var fs []notifFilter
		perCategory := map[string]int{}
		for _, f := range in.NotificationFilters {
			u, err := url.Parse(f.NotificationTarget)
			if f.Category == "" || err != nil || u.Host == "" || !callbackScheme(u) {
				return badRequest("Each notification filter needs a category and an https notification_target.")
			}
			// bunq's callback page: at most 2 callback URLs per category.
			if perCategory[f.Category]++; perCategory[f.Category] > maxURLsPerCategory {
				return badRequest("You can set at most 2 callback URLs per notification category.")
			}
			fs = append(fs, notifFilter{Category: f.Category, Target: f.NotificationTarget})
		}
		// The posted list replaces the previous filters.
		if acc != nil {
			acc.notif = fs
		} else {
			c.st.notif[c.sess.userID] = fs
		}
		return ok(renderFilters(fs)...)
	}
}

func (b *Bank) hNotifList(perAccount bool) func(*call) reply {
	return func(c *call) reply {
		var fs []notifFilter
		if perAccount {
			_, a, r := c.account("")
			if r != nil {
				return *r
			}
			fs = a.notif
		} else {
			if _, r := c.scope(); r != nil {
				return *r
			}
			fs = c.st.notif[c.sess.userID]
		}
		return unpaged(renderFilters(fs))
	}
}

func renderFilters(fs []notifFilter) []obj {
	out := []obj{}
	for _, f := range fs {
		out = append(out, item("NotificationFilterUrl", obj{"category": f.Category, "notification_target": f.Target}))
	}
	return out
}

// validLooseAlias accepts a well-formed EMAIL or PHONE_NUMBER alias.
func validLooseAlias(p pointer) bool {
	v := strings.TrimSpace(p.Value)
	switch strings.ToUpper(p.Type) {
	case "EMAIL":
		at := strings.Index(v, "@")
		return at > 0 && strings.Contains(v[at:], ".")
	case "PHONE_NUMBER":
		if len(v) < 8 || v[0] != '+' {
			return false
		}
		for _, r := range v[1:] {
			if r < '0' || r > '9' {
				return false
			}
		}
		return true
	}
	return false
}

// maxURLsPerCategory is bunq's limit of callback URLs per category.
const maxURLsPerCategory = 2

// callbackScheme: bunq calls back over https only. Plain http is accepted
// for loopback hosts, which no real bank could reach anyway, so local
// tests and `tpp serve --bank emulated` can receive callbacks.
func callbackScheme(u *url.URL) bool {
	return u.Scheme == "https" || (u.Scheme == "http" && isLoopbackHost(u.Hostname()))
}
