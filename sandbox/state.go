package sandbox

import (
	"cmp"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"time"
)

// state is everything the bank knows. It is guarded by Bank.mu.
type state struct {
	rng *mrand.Rand // seeded: users, IBANs, API keys, histories
	ids map[string]int64
	// dropMerchantRef reads draft entries back without their
	// merchant_reference (Config.DropMerchantReference, a switch).
	dropMerchantRef bool
	// nullEmpty renders empty object fields as null (Config.NullEmptyObjects).
	nullEmpty bool
	// opensslDN spells certificate subjects the OpenSSL way (Config.DNFormat).
	opensslDN bool

	users    map[int64]*user // persons, companies, PSPs
	order    []int64         // users in creation order
	accounts map[int64]*account
	payments map[int64]*payment

	apiKeys       map[string]keyOwner
	installations map[string]*installation // by token
	instByID      map[int64]*installation
	devices       []*device
	credentials   map[int64]*credential
	sessions      map[string]*session // by token
	grants        map[int64]*grant    // by UserApiKey id
	clients       map[string]*oauthClient
	codes         map[string]*authCode
	drafts        map[int64]*draftPayment
	pspDrafts     map[int64]*pspDraft
	inquiries     map[int64]*requestInquiry
	schedules     map[int64]*schedulePayment
	notif         map[int64][]notifFilter // by session user id
}

// keyOwner tells what an API key (the "secret") stands for.
type keyOwner struct {
	kind string // "user", "credential", "grant"
	id   int64
}

type user struct {
	id             int64
	kind           string // UserPerson, UserCompany, UserPaymentServiceProvider
	created        time.Time
	updated        time.Time
	publicUUID     string
	firstName      string
	lastName       string
	name           string // display name
	email          string
	phone          string
	apiKey         string
	sessionTimeout int
	// autoLogout is a PSP's auto-logout setting: the session_timeout of its
	// sessions after the PSD2 key's first (which lasts an hour).
	autoLogout int
	birth      string
	city       string
	street     string
	// PSP only
	certDN string
	roles  []string
}

type notifFilter struct {
	Category string
	Target   string
}

type account struct {
	id          int64
	kind        string // MonetaryAccountBank, MonetaryAccountSavings, MonetaryAccountJoint
	ownerID     int64
	coOwners    []int64
	created     time.Time
	updated     time.Time
	description string
	iban        string
	holder      string
	balance     int64
	overdraft   int64
	dailyLimit  int64
	savingsGoal int64
	status      string
	publicUUID  string
	color       string
	payments    []*payment // ascending id
	notif       []notifFilter
}

type payment struct {
	id          int64
	accountID   int64
	created     time.Time
	amount      int64 // negative = outgoing
	counterIBAN string
	counterName string
	counterUser int64 // emulated counterparty user, 0 if outside
	description string
	typ         string
	subType     string
	balance     int64 // balance after mutation
	merchantRef string
}

type installation struct {
	id      int64
	tokenID int64
	token   string
	pub     *rsa.PublicKey
	pubPEM  string
	created time.Time
}

type device struct {
	id             int64
	installationID int64
	secret         string
	description    string
	ips            []string
	createdIP      string // the calling IP, the binding when ips is empty
}

type credential struct {
	id             int64
	pspID          int64
	token          string
	status         string
	created        time.Time
	updated        time.Time
	expiry         time.Time
	installationID int64
	sessions       int
}

type session struct {
	id             int64
	tokenID        int64
	token          string
	installationID int64
	userID         int64 // the session user; a UserApiKey id for grants
	created        time.Time
	expires        time.Time
	timeout        time.Duration // the session_timeout it was made with
}

type grant struct {
	id          int64 // the UserApiKey id
	pspID       int64
	userID      int64 // the granting user
	clientID    string
	token       string
	created     time.Time
	revoked     bool
	redirectURI string
}

type oauthClient struct {
	id        int64
	pspID     int64
	clientID  string
	secret    string
	status    string
	created   time.Time
	updated   time.Time
	callbacks []*callbackURL
}

type callbackURL struct {
	id      int64
	url     string
	created time.Time
	updated time.Time
}

type authCode struct {
	clientID    string
	redirectURI string
	state       string
	userID      int64
	expires     time.Time
	used        bool
}

type draftEntry struct {
	id          int64
	amount      int64
	currency    string
	alias       pointer
	description string
	merchantRef string
}

type draftPayment struct {
	id          int64
	accountID   int64
	creatorID   int64 // user id whose label is user_alias_created
	grantID     int64 // the UserApiKey that created it, if any
	status      string
	entries     []draftEntry
	schedule    json.RawMessage
	created     time.Time
	updated     time.Time
	paymentIDs  []int64
	responderID int64
}

type pspDraft struct {
	id          int64
	pspID       int64
	senderIBAN  string
	senderName  string
	counterIBAN string
	counterName string
	description string
	amount      int64
	currency    string
	status      string
	created     time.Time
	updated     time.Time
	paymentID   int64
}

type requestInquiry struct {
	id          int64
	accountID   int64
	creatorID   int64
	created     time.Time
	updated     time.Time
	amount      int64
	currency    string
	alias       pointer
	description string
	status      string
}

type schedulePayment struct {
	id        int64
	accountID int64
	entries   []draftEntry
	schedule  json.RawMessage
	created   time.Time
	batch     bool
}

// pointer is bunq's alias in requests: IBAN, EMAIL or PHONE_NUMBER.
type pointer struct {
	Type  string `json:"type"`
	Value string `json:"value"`
	Name  string `json:"name,omitempty"`
}

func newState(seed int64, now time.Time) *state {
	st := &state{
		rng:           mrand.New(mrand.NewPCG(uint64(seed), 0x62756e71)), // "bunq"
		ids:           map[string]int64{},
		users:         map[int64]*user{},
		accounts:      map[int64]*account{},
		payments:      map[int64]*payment{},
		apiKeys:       map[string]keyOwner{},
		installations: map[string]*installation{},
		instByID:      map[int64]*installation{},
		credentials:   map[int64]*credential{},
		sessions:      map[string]*session{},
		grants:        map[int64]*grant{},
		clients:       map[string]*oauthClient{},
		codes:         map[string]*authCode{},
		drafts:        map[int64]*draftPayment{},
		pspDrafts:     map[int64]*pspDraft{},
		inquiries:     map[int64]*requestInquiry{},
		schedules:     map[int64]*schedulePayment{},
		notif:         map[int64][]notifFilter{},
	}
	st.seed(now)
	return st
}

// idBase spreads the id ranges of object kinds so that ids look like bunq's
// and an id of one kind is never mistaken for another in tests.
var idBase = map[string]int64{
	"user": 1000, "account": 2000, "payment": 100000, "installation": 5000, "device": 6000,
	"session": 7000, "token": 8000, "credential": 9000, "oauth-client": 3000, "callback-url": 3500,
	"draft": 40000, "psp-draft": 45000, "inquiry": 50000, "schedule": 55000,
}

func (st *state) next(kind string) int64 {
	st.ids[kind]++
	return idBase[kind] + st.ids[kind]
}

// seededHex returns n random hex characters from the seeded generator.
func (st *state) seededHex(n int) string {
	b := make([]byte, (n+1)/2)
	for i := range b {
		b[i] = byte(st.rng.UintN(256))
	}
	return hex.EncodeToString(b)[:n]
}

func (st *state) seededUUID() string {
	h := st.seededHex(32)
	return h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:32]
}

// randomHex returns n hex characters from crypto/rand: for tokens, secrets
// and codes, which must not be guessable from the seed.
func randomHex(n int) string {
	b := make([]byte, (n+1)/2)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("sandbox: crypto/rand: %v", err)) // never fails on supported platforms
	}
	return hex.EncodeToString(b)[:n]
}

func randomUUID() string {
	h := randomHex(32)
	return h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:32]
}

// makeIBAN builds a valid IBAN for country, bank code and account digits.
func makeIBAN(country, bank, digits string) string {
	bban := bank + digits
	r := 0
	for _, c := range bban + country + "00" {
		if c >= 'A' && c <= 'Z' {
			v := int(c-'A') + 10
			r = (r*100 + v) % 97
		} else {
			r = (r*10 + int(c-'0')) % 97
		}
	}
	return country + fmt.Sprintf("%02d", 98-r) + bban
}

func (st *state) newIBAN() string {
	for {
		iban := makeIBAN("NL", "BUNQ", "20"+fmt.Sprintf("%08d", st.rng.IntN(100000000)))
		if st.accountByIBAN(iban) == nil {
			return iban
		}
	}
}

func (st *state) accountByIBAN(iban string) *account {
	for _, a := range st.accounts {
		if a.iban == iban {
			return a
		}
	}
	return nil
}

var firstNames = []string{"Anna", "Bram", "Claire", "Daan", "Eva", "Finn", "Julia", "Lars", "Noor", "Sem", "Sophie", "Thijs", "Lotte", "Milan", "Emma", "Ruben"}
var lastNames = []string{"de Vries", "Jansen", "van Dijk", "Bakker", "Visser", "Smit", "Meijer", "de Boer", "Mulder", "de Groot", "Bos", "Vos", "Peters", "Hendriks"}
var cities = []string{"Amsterdam", "Utrecht", "Rotterdam", "Den Haag", "Eindhoven", "Groningen"}

// newPerson adds a UserPerson with a seeded name and API key.
func (st *state) newPerson(now time.Time) *user {
	first := firstNames[st.rng.IntN(len(firstNames))]
	last := lastNames[st.rng.IntN(len(lastNames))]
	u := &user{
		id: st.next("user"), kind: "UserPerson", created: now, updated: now,
		publicUUID: st.seededUUID(), firstName: first, lastName: last, name: first + " " + last,
		sessionTimeout: 604800,
		birth:          fmt.Sprintf("19%02d-%02d-%02d", 60+st.rng.IntN(40), 1+st.rng.IntN(12), 1+st.rng.IntN(28)),
		city:           cities[st.rng.IntN(len(cities))],
		street:         "Keizersgracht",
	}
	u.email = fmt.Sprintf("%s.%d@sandbox.example", lower(first), u.id)
	u.phone = fmt.Sprintf("+316%08d", st.rng.IntN(100000000))
	u.apiKey = "sandbox_" + st.seededHex(56)
	st.addUser(u)
	return u
}

func (st *state) newCompany(now time.Time) *user {
	names := []string{"Tulip Trading B.V.", "Canal Coffee B.V.", "Dijkstra Software B.V.", "Polder Logistics B.V."}
	n := names[st.rng.IntN(len(names))]
	u := &user{
		id: st.next("user"), kind: "UserCompany", created: now, updated: now,
		publicUUID: st.seededUUID(), name: n, sessionTimeout: 604800,
		city: cities[st.rng.IntN(len(cities))], street: "Damrak",
	}
	u.email = fmt.Sprintf("finance.%d@sandbox.example", u.id)
	u.phone = fmt.Sprintf("+312%08d", st.rng.IntN(100000000))
	u.apiKey = "sandbox_" + st.seededHex(56)
	st.addUser(u)
	return u
}

func (st *state) addUser(u *user) {
	st.users[u.id] = u
	st.order = append(st.order, u.id)
	if u.apiKey != "" {
		st.apiKeys[u.apiKey] = keyOwner{kind: "user", id: u.id}
	}
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}

var colors = []string{"#FF5A5F", "#3FB9E8", "#8AC944", "#F6A623", "#9B59B6"}

func (st *state) newAccount(kind string, owner *user, desc string, now time.Time) *account {
	a := &account{
		id: st.next("account"), kind: kind, ownerID: owner.id, created: now, updated: now,
		description: desc, iban: st.newIBAN(), holder: owner.name, status: "ACTIVE",
		publicUUID: st.seededUUID(), dailyLimit: 1000000, color: colors[st.rng.IntN(len(colors))],
	}
	st.accounts[a.id] = a
	return a
}

// accountsOf lists the accounts a user owns or co-owns, by id.
func (st *state) accountsOf(userID int64) []*account {
	var out []*account
	for _, a := range st.accounts {
		if a.heldBy(userID) {
			out = append(out, a)
		}
	}
	sortByID(out, func(a *account) int64 { return a.id })
	return out
}

// heldBy reports whether userID owns or co-owns a.
func (a *account) heldBy(userID int64) bool {
	return a.ownerID == userID || slices.Contains(a.coOwners, userID)
}

// book records one side of a payment on a and moves its balance.
func (st *state) book(a *account, amount int64, counterIBAN, counterName string, counterUser int64, desc, typ string, at time.Time) *payment {
	a.balance += amount
	a.updated = at
	p := &payment{
		id: st.next("payment"), accountID: a.id, created: at, amount: amount,
		counterIBAN: counterIBAN, counterName: counterName, counterUser: counterUser,
		description: desc, typ: typ, subType: "PAYMENT", balance: a.balance,
	}
	a.payments = append(a.payments, p)
	st.payments[p.id] = p
	return p
}

// transfer books both sides of a payment between two emulated accounts.
func (st *state) transfer(from, to *account, amount int64, desc string, at time.Time) (*payment, *payment) {
	out := st.book(from, -amount, to.iban, to.holder, to.ownerID, desc, "BUNQ", at)
	in := st.book(to, amount, from.iban, from.holder, from.ownerID, desc, "BUNQ", at)
	return out, in
}

type merchant struct {
	name, iban string
	min, max   int64 // cents
	desc       []string
}

// seedAccounts are the accounts the seed fills with history.
type seedAccounts struct {
	main, savings, joint, bobMain, carolMain, compMain *account
}

// counterparties are whom the seed's payments go to and come from.
type counterparties struct {
	employer, landlord merchant
	shops, friends     []merchant
}

// seed creates the deterministic users, accounts and histories. The order
// of the steps is fixed: each draws from st.rng.
func (st *state) seed(now time.Time) {
	start := now.Add(-300 * 24 * time.Hour).Truncate(24 * time.Hour)
	acc := st.seedUsersAndAccounts(start)
	cp := st.seedCounterparties()

	// Bookings are planned first and applied in time order at the end, so
	// that ids grow with created on every account, as at bunq.
	l := &ledger{balance: map[int64]int64{}, count: map[int64]int{}}

	// Opening balances for the other accounts.
	t0 := start.Add(9 * time.Hour)
	l.book(acc.bobMain, 185000, cp.employer.iban, cp.employer.name, 0, "Salary", "EBA_SCT", t0)
	l.book(acc.carolMain, 2500, cp.friends[0].iban, cp.friends[0].name, 0, "Pocket money", "EBA_SCT", t0.Add(time.Minute))
	l.book(acc.compMain, 1250000, cp.employer.iban, cp.employer.name, 0, "Invoice 2024-001", "EBA_SCT", t0.Add(2*time.Minute))

	st.planMainAccount(l, start, acc, cp)
	st.planOtherAccounts(l, start, acc, cp)
	l.apply(st)
	for _, a := range []*account{acc.main, acc.savings, acc.joint, acc.bobMain, acc.carolMain, acc.compMain} {
		if n := len(a.payments); n > 0 {
			a.updated = a.payments[n-1].created
		}
	}
}

// seedUsersAndAccounts creates the seed's users and their accounts.
func (st *state) seedUsersAndAccounts(start time.Time) seedAccounts {
	alice := st.newPerson(start)
	bob := st.newPerson(start)
	carol := st.newPerson(start)
	company := st.newCompany(start)

	main := st.newAccount("MonetaryAccountBank", alice, "Main account", start)
	main.overdraft = 50000
	savings := st.newAccount("MonetaryAccountSavings", alice, "Savings", start)
	savings.savingsGoal = 500000
	joint := st.newAccount("MonetaryAccountJoint", alice, "Household", start)
	joint.coOwners = []int64{bob.id}
	joint.holder = alice.name + " & " + bob.name
	bobMain := st.newAccount("MonetaryAccountBank", bob, "Daily", start)
	carolMain := st.newAccount("MonetaryAccountBank", carol, "Current account", start)
	compMain := st.newAccount("MonetaryAccountBank", company, "Business account", start)
	return seedAccounts{main: main, savings: savings, joint: joint, bobMain: bobMain, carolMain: carolMain, compMain: compMain}
}

// seedCounterparties makes the employer, landlord, shops and friends, each
// with an IBAN at another Dutch bank.
func (st *state) seedCounterparties() counterparties {
	bank := func(code string) string { return makeIBAN("NL", code, fmt.Sprintf("%010d", st.rng.IntN(1e9))) }
	employer := merchant{name: "Acme Software B.V.", iban: bank("ABNA")}
	landlord := merchant{name: "Woonstichting De Key", iban: bank("INGB")}
	shops := []merchant{
		{"Albert Heijn", bank("INGB"), 800, 9500, []string{"Groceries", "AH to go", "Weekly shopping"}},
		{"Jumbo Supermarkten", bank("RABO"), 600, 7000, []string{"Groceries", "Jumbo"}},
		{"NS Reizigers", bank("INGB"), 290, 4600, []string{"Train ticket", "OV-chipkaart top-up"}},
		{"Thuisbezorgd.nl", bank("ABNA"), 1500, 4500, []string{"Dinner order", "Takeaway"}},
		{"Bol.com", bank("INGB"), 999, 12999, []string{"Order 4821", "Books", "Headphones"}},
		{"Cafe de Jaren", bank("RABO"), 450, 3800, []string{"Coffee", "Lunch", "Drinks"}},
		{"Vattenfall", bank("INGB"), 8500, 14000, []string{"Energy bill"}},
		{"Ziggo", bank("ABNA"), 5450, 5450, []string{"Internet and TV"}},
		{"Netflix International B.V.", bank("ABNA"), 1399, 1399, []string{"Netflix subscription"}},
		{"Gemeente Amsterdam", bank("BNGH"), 2500, 15000, []string{"Parking permit", "Municipal taxes"}},
	}
	friends := []merchant{
		{"Lisa Verbeek", bank("TRIO"), 500, 6000, []string{"Tikkie dinner", "Concert tickets", "Thanks!"}},
		{"Tom Kuipers", bank("KNAB"), 1000, 4000, []string{"Pizza night", "Birthday gift"}},
	}
	return counterparties{employer: employer, landlord: landlord, shops: shops, friends: friends}
}

// planMainAccount plans Alice's main account: exactly 300 payments over
// ~10 months of salary, rent, savings, shopping and friends.
func (st *state) planMainAccount(l *ledger, start time.Time, acc seedAccounts, cp counterparties) {
	main, employer, landlord, shops, friends := acc.main, cp.employer, cp.landlord, cp.shops, cp.friends
	step := 299 * 24 * time.Hour / 300
	for i := 0; l.count[main.id] < 300; i++ {
		at := start.Add(time.Duration(i)*step + time.Duration(st.rng.IntN(3600))*time.Second + 8*time.Hour)
		switch {
		case i%30 == 0:
			l.book(main, 285000, employer.iban, employer.name, 0, "Salary "+at.Format("January 2006"), "EBA_SCT", at)
		case i%30 == 2 && l.balance[main.id] > 120000:
			l.book(main, -115000, landlord.iban, landlord.name, 0, "Rent "+at.Format("January 2006"), "EBA_SCT", at)
		case i%30 == 5 && l.balance[main.id] > 30000:
			l.transfer(main, acc.savings, 25000, "Monthly savings", at)
		case i%30 == 9 && l.balance[main.id] > 20000:
			l.transfer(main, acc.joint, 15000, "Household contribution", at)
		case i%30 == 11:
			l.transfer(acc.bobMain, main, int64(1000+st.rng.IntN(4000)), "Groceries share", at)
		case i%7 == 3:
			f := friends[st.rng.IntN(len(friends))]
			amt := f.min + st.rng.Int64N(f.max-f.min+1)
			if st.rng.IntN(2) == 0 || l.balance[main.id] < amt+5000 {
				l.book(main, amt, f.iban, f.name, 0, f.desc[st.rng.IntN(len(f.desc))], "EBA_SCT", at)
			} else {
				l.book(main, -amt, f.iban, f.name, 0, f.desc[st.rng.IntN(len(f.desc))], "EBA_SCT", at)
			}
		default:
			m := shops[st.rng.IntN(len(shops))]
			amt := m.min + st.rng.Int64N(m.max-m.min+1)
			if l.balance[main.id] < amt+5000 {
				l.book(main, amt/2+500, friends[0].iban, friends[0].name, 0, "Paying you back", "EBA_SCT", at)
				continue
			}
			typ := "EBA_SCT"
			if st.rng.IntN(3) == 0 {
				typ = "IDEAL"
			}
			l.book(main, -amt, m.iban, m.name, 0, m.desc[st.rng.IntN(len(m.desc))], typ, at)
		}
	}
}

// planOtherAccounts plans a few payments for Bob, the joint account and
// Carol.
func (st *state) planOtherAccounts(l *ledger, start time.Time, acc seedAccounts, cp counterparties) {
	shops, friends := cp.shops, cp.friends
	for i := 0; i < 12; i++ {
		at := start.Add(time.Duration(20+i*24) * 24 * time.Hour).Add(15 * time.Hour)
		m := shops[st.rng.IntN(len(shops))]
		l.book(acc.bobMain, -(m.min + st.rng.Int64N(m.max-m.min+1)), m.iban, m.name, 0, m.desc[0], "EBA_SCT", at)
		if i%3 == 0 {
			l.transfer(acc.joint, acc.bobMain, 2000, "Shared expenses", at.Add(time.Hour))
		}
	}
	for i := 0; i < 4; i++ {
		at := start.Add(time.Duration(100+i*40) * 24 * time.Hour)
		l.book(acc.carolMain, -500, shops[5].iban, shops[5].name, 0, "Coffee", "EBA_SCT", at)
		l.book(acc.carolMain, 500, friends[1].iban, friends[1].name, 0, "Coffee money", "EBA_SCT", at.Add(time.Hour))
	}
}

// ledger plans the seed's bookings. It keeps running balances and counts
// so the seed can decide on them while planning; apply books everything in
// time order.
type ledger struct {
	planned []plannedBooking
	balance map[int64]int64 // by account id
	count   map[int64]int   // bookings by account id
}

type plannedBooking struct {
	acc                      *account
	amount                   int64
	counterIBAN, counterName string
	counterUser              int64
	desc, typ                string
	at                       time.Time
}

func (l *ledger) book(a *account, amount int64, counterIBAN, counterName string, counterUser int64, desc, typ string, at time.Time) {
	l.balance[a.id] += amount
	l.count[a.id]++
	l.planned = append(l.planned, plannedBooking{a, amount, counterIBAN, counterName, counterUser, desc, typ, at})
}

func (l *ledger) transfer(from, to *account, amount int64, desc string, at time.Time) {
	l.book(from, -amount, to.iban, to.holder, to.ownerID, desc, "BUNQ", at)
	l.book(to, amount, from.iban, from.holder, from.ownerID, desc, "BUNQ", at)
}

// apply books the plan in time order; bookings at the same time keep the
// order they were planned in (a transfer's debit before its credit).
func (l *ledger) apply(st *state) {
	slices.SortStableFunc(l.planned, func(a, b plannedBooking) int { return a.at.Compare(b.at) })
	for _, p := range l.planned {
		st.book(p.acc, p.amount, p.counterIBAN, p.counterName, p.counterUser, p.desc, p.typ, p.at)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// sortByID sorts xs ascending by key.
func sortByID[T any](xs []T, key func(T) int64) {
	slices.SortFunc(xs, func(a, b T) int { return cmp.Compare(key(a), key(b)) })
}
