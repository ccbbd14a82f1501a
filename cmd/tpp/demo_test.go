package main

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/demo"
	"github.com/bunqtpp/tpp/internal/browsertest"
	"github.com/bunqtpp/tpp/internal/stacktest"
	"github.com/bunqtpp/tpp/internal/testenv"
)

// demoRun is one 'tpp demo' running in this process.
type demoRun struct {
	out, errs *stacktest.LogBuffer
	appURL    string // ".../demo/"
	publicURL string
	stop      func() error
}

var demoAppLine = regexp.MustCompile(`Demo fintech app +(http://\S+)/demo/`)

// startDemo runs 'tpp demo args...' until the test ends or stop is
// called, and waits until it serves.
func startDemo(t *testing.T, args ...string) *demoRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &demoRun{out: &stacktest.LogBuffer{}, errs: &stacktest.LogBuffer{}}
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"demo"}, args...), r.out, r.errs) }()
	var once sync.Once
	var stopErr error
	r.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(30 * time.Second):
				stopErr = errors.New("tpp demo did not stop within 30 s")
			}
		})
		return stopErr
	}
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("stop tpp demo: %v", err)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := demoAppLine.FindStringSubmatch(r.out.String()); m != nil {
			r.publicURL, r.appURL = m[1], m[1]+"/demo/"
			return r
		}
		select {
		case err := <-done:
			t.Fatalf("tpp demo stopped: %v\nstdout:\n%s\nstderr:\n%s", err, r.out, demoTail(r.errs.String(), 40))
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("tpp demo did not start within 30 s\nstdout:\n%s\nstderr:\n%s", r.out, demoTail(r.errs.String(), 40))
	return nil
}

// demoPorts finds n consecutive free TCP ports on 127.0.0.1 and returns the
// first. The ports are closed again, so another process could take one
// before the demo does; random bases make that unlikely.
func demoPorts(t *testing.T, n int) int {
	t.Helper()
	for range 100 {
		base := 20000 + rand.IntN(40000)
		var ls []net.Listener
		ok := true
		for i := range n {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base+i))
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free consecutive ports found")
	return 0
}

func demoArgs(t *testing.T, dir, listen string) []string {
	return []string{
		"--db", filepath.Join(dir, "tpp.db"),
		"--listen", listen,
		"--emulated-addr", "127.0.0.1:" + strconv.Itoa(demoPorts(t, 3)),
		"--metrics-listen", "",
		// Above 5 s: net/http counts a connection that has sent nothing yet
		// (a browser's preconnect) as busy for its first 5 s, so a shorter
		// grace fails whenever Chromium opened one just before the stop.
		"--shutdown-grace", "15s",
	}
}

// apiStatus calls the public API with key and returns the status code.
func apiStatus(t *testing.T, publicURL, key, path string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, publicURL+path, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func readDemoClient(t *testing.T, dir string) demo.Client {
	t.Helper()
	path := filepath.Join(dir, demo.ClientFile)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var dc demo.Client
	if err := json.Unmarshal(b, &dc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(dc.APIKey, "tpp_") || !strings.HasPrefix(dc.WebhookSecret, "whsec_") {
		t.Fatalf("demo client file holds %+v", dc)
	}
	return dc
}

// TestDemoKeepsItsClientAndResets runs the demo twice on one data dir (the
// client and its API key survive), then with --reset (everything is new).
func TestDemoKeepsItsClientAndResets(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	listen := "127.0.0.1:" + strconv.Itoa(demoPorts(t, 1))

	r1 := startDemo(t, demoArgs(t, dir, listen)...)
	first := readDemoClient(t, dir)
	if !strings.Contains(r1.out.String(), "created the demo fintech client") {
		t.Errorf("first run did not say it created the client:\n%s", r1.out)
	}
	for _, want := range []string{first.APIKey, "/docs", "/app", "curl -s " + r1.publicURL + "/v1/consents"} {
		if !strings.Contains(r1.out.String(), want) {
			t.Errorf("welcome text lacks %q:\n%s", want, r1.out)
		}
	}
	if got := apiStatus(t, r1.publicURL, first.APIKey, "/v1/consents"); got != http.StatusOK {
		t.Fatalf("first run: GET /v1/consents with the demo key = %d", got)
	}
	if err := r1.stop(); err != nil {
		t.Fatal(err)
	}
	if out := r1.out.String(); !strings.Contains(out, "tpp: shutting down") || !strings.HasSuffix(out, "tpp: stopped\n") {
		t.Errorf("the demo did not say it shut down:\n%s", out)
	}

	r2 := startDemo(t, demoArgs(t, dir, listen)...)
	if again := readDemoClient(t, dir); again != first {
		t.Errorf("second run changed the demo client: %+v, was %+v", again, first)
	}
	if !strings.Contains(r2.out.String(), "reusing the demo fintech client") {
		t.Errorf("second run did not reuse the client:\n%s", r2.out)
	}
	if !strings.Contains(r2.out.String(), "connections made in an earlier run have ended") {
		t.Errorf("second run did not say the emulated bank forgot the last run's connections:\n%s", r2.out)
	}
	if got := apiStatus(t, r2.publicURL, first.APIKey, "/v1/consents"); got != http.StatusOK {
		t.Fatalf("second run: GET /v1/consents with the first key = %d", got)
	}
	if err := r2.stop(); err != nil {
		t.Fatal(err)
	}

	r3 := startDemo(t, append(demoArgs(t, dir, listen), "--reset")...)
	if !strings.Contains(r3.out.String(), "--reset: deleted") {
		t.Errorf("--reset did not say what it deleted:\n%s", r3.out)
	}
	fresh := readDemoClient(t, dir)
	if fresh.APIKey == first.APIKey || fresh.ClientID == first.ClientID {
		t.Fatalf("--reset kept the client %s", fresh.ClientID)
	}
	if got := apiStatus(t, r3.publicURL, first.APIKey, "/v1/consents"); got != http.StatusUnauthorized {
		t.Errorf("after --reset the old key answers %d, want 401", got)
	}
	if got := apiStatus(t, r3.publicURL, fresh.APIKey, "/v1/consents"); got != http.StatusOK {
		t.Errorf("after --reset the new key answers %d, want 200", got)
	}
}

// TestDemoInABrowser clicks through the demo fintech app in headless
// Chromium: connect (the real consent flow through the emulated bunq),
// accounts with charts, transaction pages and a date filter; a payment
// approved in the emulated bunq app, opened by the dashboard's link in a
// second tab, that turns executed (status, history, balance) in the first
// tab, which is never navigated or reloaded; the same for a rejected one;
// a funds check both ways; a form error; the page without JavaScript;
// the webhook events; revoke; and the not-found page.
func TestDemoInABrowser(t *testing.T) {
	testenv.Heavy(t)
	t.Parallel()
	d := startDemo(t, demoArgs(t, t.TempDir(), "127.0.0.1:0")...)
	// Started second, so it closes first (cleanups run last in, first
	// out): the demo then stops with no browser connections left open.
	b := browsertest.New(t)

	b.Run("landing", chromedp.Navigate(d.appURL), chromedp.WaitVisible("#connect"))
	b.Screenshot("1-landing")

	// Connect: our consent page, then the emulated bunq's login and
	// approval, then back to the app.
	b.Run("connect", chromedp.Click("#connect"), chromedp.WaitVisible(`//button[contains(., "Continue to bunq")]`))
	b.Screenshot("2-consent-page")
	b.Run("continue to bunq", chromedp.Click(`//button[contains(., "Continue to bunq")]`), chromedp.WaitVisible(`//h1[contains(., "Log in to bunq")]`))
	b.Screenshot("3-bunq-login")
	b.Run("pick the first sandbox user", chromedp.Click(`//button[contains(., "Continue")]`), chromedp.WaitVisible(`//button[@value="approve"]`))
	b.Screenshot("4-bunq-approve")
	b.Run("approve", chromedp.Click(`//button[@value="approve"]`), chromedp.WaitVisible("#accounts"))
	b.Screenshot("5-dashboard")
	if loc := b.Location(); !strings.HasPrefix(loc, d.appURL) {
		t.Fatalf("after approval the browser is at %s", loc)
	}
	text := b.Text()
	if !strings.Contains(text, "Your bunq account is connected") {
		t.Errorf("dashboard lacks the connected message:\n%s", text)
	}
	bankUser := browsertest.Get(b, "bank user", chromedp.Text(".who strong"))
	if bankUser == "" {
		t.Fatal("the header does not name the bunq user")
	}

	// Accounts, each with a chart that has a line.
	accounts := browsertest.Get(b, "accounts", chromedp.Nodes("li.account", chromedp.AtLeast(0)))
	lines := browsertest.Get(b, "chart lines", chromedp.Nodes("li.account svg.chart path.chart-line", chromedp.AtLeast(0)))
	if len(accounts) == 0 || len(lines) != len(accounts) {
		t.Fatalf("%d accounts, %d charts with a line", len(accounts), len(lines))
	}
	b.Run("selected account's chart", chromedp.WaitVisible("#transactions svg.chart path.chart-line"), chromedp.WaitVisible("#transactions svg.chart text.chart-label"))

	// Transactions: a full first page, an older page, and a date filter.
	rows := func() []string {
		t.Helper()
		s := browsertest.Get(b, "rows", chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("table.txs tbody tr")).map(r => r.innerText)`))
		return s
	}
	page1 := rows()
	if len(page1) != 10 {
		t.Fatalf("first page has %d rows: %q", len(page1), page1)
	}
	b.Run("older transactions", chromedp.Click("#older"), chromedp.WaitVisible("#first-page"))
	b.Screenshot("6-older-transactions")
	page2 := rows()
	if len(page2) == 0 || page2[0] == page1[0] {
		t.Fatalf("the older page repeats the first: %q", page2)
	}
	day := strings.SplitN(page2[0], "\t", 2)[0] // "2 Jan 2006 15:04"
	when, err := time.Parse("2 Jan 2006 15:04", day)
	if err != nil {
		t.Fatalf("date cell %q: %v", day, err)
	}
	iso := when.Format(time.DateOnly)
	b.Run("filter by date",
		chromedp.SetValue("#from", iso), chromedp.SetValue("#to", iso), chromedp.Click("#filter"),
		chromedp.WaitVisible(`//input[@id="from" and @value="`+iso+`"]`),
	)
	b.Screenshot("7-date-filter")
	filtered := rows()
	if len(filtered) == 0 {
		t.Fatal("the date filter shows no rows for a day with a transaction")
	}
	for _, r := range filtered {
		if !strings.HasPrefix(r, when.Format("2 Jan 2006")) {
			t.Errorf("row outside %s: %q", iso, r)
		}
	}

	// Pay, approve in the bunq app in a second tab, and see the first tab
	// follow by itself. Its balance goes down by the amount.
	balanceOf := browsertest.Get(b, "selected account", chromedp.AttributeValue("li.account.selected .account-balance", "data-balance-of"))
	if !balanceOf.Exists || balanceOf.Value == "" {
		t.Fatal("the selected account's card has no data-balance-of")
	}
	before := shownMinor(t, browsertest.Get(b, "balance before", chromedp.Text("li.account.selected .account-balance")))
	paid := demoPay(t, b, d.appURL, "12.50", "Demo order 1042")
	b.Screenshot("8-payment-pending")
	live := demoWatch(t, b)
	bank := b.FollowNewTab("open the bunq app", chromedp.Click("#bank-app"))
	bank.Run("bunq app", chromedp.Click(`//a[contains(., "`+bankUser+`")]`),
		chromedp.WaitVisible(`//button[starts-with(@aria-label, "Accept payment")]`))
	bank.Screenshot("9-bunq-app")
	if got := bank.Text(); !strings.Contains(got, "From") || !strings.Contains(got, "NL") {
		t.Errorf("the bunq app does not show the draft's source account:\n%s", got)
	}
	bank.CheckLayout("bunq-app")
	bank.Run("accept", chromedp.Click(`//button[starts-with(@aria-label, "Accept payment")]`),
		chromedp.WaitVisible(`//p[@role="status" and contains(., "Payment accepted")]`))
	bank.Screenshot("10-bunq-app-accepted")
	bank.Close()
	b.Activate()
	b.Run("status turns executed in place", chromedp.WaitVisible("#status-"+paid+".status-executed"), chromedp.WaitVisible("#note-executed"))
	settledAt := time.Now()
	live.check("executed")
	if got := demoHistory(t, b, paid); strings.Join(got, ",") != "pending,executed" {
		t.Errorf("status history shown: %q, want pending then executed", got)
	}
	want := shownEUR(before - 1250)
	b.Run("balance follows",
		chromedp.WaitVisible(`//span[@data-balance-of="`+balanceOf.Value+`" and normalize-space(.)="`+want+`"]`),
		chromedp.WaitReady(`//option[@data-option-of="`+balanceOf.Value+`" and contains(., "(`+want+`)")]`),
	)
	if hidden := browsertest.Get(b, "pending hint", chromedp.Evaluate[bool](`document.getElementById("pending-hint").hidden`)); !hidden {
		t.Error("the 'waiting for your approval' hint still shows with nothing pending")
	}
	b.Screenshot("11-payment-executed")
	live.check("executed")
	// Nothing is pending, so the page stops asking: 6 s is longer than the
	// script's longest pause between two polls (5 s).
	polls := live.polls()
	if polls == 0 {
		t.Fatal("the page never asked for the payment's status")
	}
	time.Sleep(time.Until(settledAt.Add(6 * time.Second)))
	if again := live.polls(); again != polls {
		t.Errorf("the page asked for a status %d more times with nothing pending", again-polls)
	}
	live.check("executed")

	// The note's link shows the payment among the transactions, read fresh.
	b.Run("show it in the transactions", chromedp.Click("#note-executed a"), chromedp.WaitVisible("table.txs"))
	if r := rows(); len(r) == 0 || !strings.Contains(r[0], "Bakkerij de Korenschoof") || !strings.Contains(r[0], "−€ 12.50") {
		t.Errorf("the newest transaction after the payment: %q", r)
	}

	// Funds: yes for a little, no for a fortune.
	b.Run("funds yes", chromedp.SendKeys("#funds-amount", "1.00"), chromedp.Click("#funds-submit"), chromedp.WaitVisible("#funds-answer"))
	if got := browsertest.Get(b, "funds answer", chromedp.Text("#funds-answer")); !strings.HasPrefix(got, "Yes") {
		t.Errorf("funds for 1.00: %q", got)
	}
	b.Run("funds no", chromedp.SendKeys("#funds-amount", "50000.00"), chromedp.Click("#funds-submit"),
		chromedp.WaitVisible(`//p[@id="funds-answer" and starts-with(normalize-space(.), "No")]`))
	b.Screenshot("12-funds-no")

	// A form error keeps what was typed and says what is wrong.
	b.Run("pay with a bad amount",
		chromedp.Navigate(d.appURL),
		chromedp.WaitVisible("#pay-submit"),
		chromedp.SendKeys("#amount", "12.505"),
		chromedp.SendKeys("#iban", "NL02 ABNA 0123 4567 89"),
		chromedp.SendKeys("#name", "Bakkerij de Korenschoof"),
		chromedp.SendKeys("#description", "Demo order 1043"),
		chromedp.Click("#pay-submit"),
		chromedp.WaitVisible("#pay .alert"),
	)
	b.Screenshot("13-pay-form-error")
	if got := browsertest.Get(b, "pay error", chromedp.Text("#pay .alert")); !strings.Contains(got, "amount") {
		t.Errorf("pay form error: %q", got)
	}
	if got := browsertest.Get(b, "kept name", chromedp.Value("#name")); got != "Bakkerij de Korenschoof" {
		t.Errorf("the form lost the name: %q", got)
	}

	// Reject: the same, ending in rejected, and no money moves.
	balance := shownMinor(t, browsertest.Get(b, "balance", chromedp.Text("li.account.selected .account-balance")))
	if balance != before-1250 {
		t.Errorf("after a reload the balance is %s, want %s", shownEUR(balance), shownEUR(before-1250))
	}
	refused := demoPay(t, b, d.appURL, "7.25", "Demo order 1044")
	live = demoWatch(t, b)
	bank = b.FollowNewTab("open the bunq app again", chromedp.Click("#bank-app"))
	bank.Run("bunq app again", chromedp.Click(`//a[contains(., "`+bankUser+`")]`),
		chromedp.Click(`//button[starts-with(@aria-label, "Reject payment")]`),
		chromedp.WaitVisible(`//p[@role="status" and contains(., "Payment rejected")]`))
	bank.Close()
	b.Activate()
	b.Run("status turns rejected in place", chromedp.WaitVisible("#status-"+refused+".status-rejected"), chromedp.WaitVisible("#note-closed"))
	live.check("rejected")
	if got := demoHistory(t, b, refused); strings.Join(got, ",") != "pending,rejected" {
		t.Errorf("status history shown: %q, want pending then rejected", got)
	}
	if got := browsertest.Get(b, "executed one", chromedp.Text("#status-"+paid)); !strings.EqualFold(got, "executed") {
		t.Errorf("the executed payment now shows %q", got)
	}
	b.Screenshot("14-payment-rejected")

	// Without JavaScript the page refreshes itself (a <noscript> meta
	// refresh) until the payment settles.
	b.Scripts(false)
	noJS := demoPay(t, b, d.appURL, "1.00", "Demo order 1045")
	if got := browsertest.Get(b, "script ran", chromedp.Evaluate[bool](`document.getElementById("pending-hint").hidden`)); got {
		t.Fatal("with scripts off, the pending hint is hidden")
	}
	bank = b.FollowNewTab("open the bunq app without scripts", chromedp.Click("#bank-app"))
	bank.Run("accept without scripts", chromedp.Click(`//a[contains(., "`+bankUser+`")]`),
		chromedp.Click(`//button[starts-with(@aria-label, "Accept payment")]`),
		chromedp.WaitVisible(`//p[@role="status" and contains(., "Payment accepted")]`))
	bank.Close()
	b.Activate()
	b.Run("status follows without scripts", chromedp.WaitVisible("#status-"+noJS+".status-executed"),
		// The same refresh reads the balance fresh: the payment just settled.
		chromedp.WaitVisible(`//span[@data-balance-of="`+balanceOf.Value+`" and normalize-space(.)="`+shownEUR(before-1250-100)+`"]`))
	b.Screenshot("15-payment-executed-without-scripts")
	if got := demoHistory(t, b, noJS); strings.Join(got, ",") != "pending,executed" {
		t.Errorf("status history without scripts: %q", got)
	}
	b.Scripts(true)

	// The webhooks of the consent and the payments arrived and verified.
	eventsDeadline := time.Now().Add(15 * time.Second)
	for {
		b.Run("reload", chromedp.Navigate(d.appURL), chromedp.WaitVisible("#events"))
		ev := browsertest.Get(b, "events", chromedp.Text("#events"))
		if strings.Contains(ev, "consent.updated") && strings.Contains(ev, "payment.updated") &&
			strings.Contains(ev, "executed") && strings.Contains(ev, "rejected") {
			if !strings.Contains(ev, "payment of € 12.50 to Bakkerij de Korenschoof") {
				t.Errorf("the events do not name the payment: %q", ev)
			}
			break
		}
		if time.Now().After(eventsDeadline) {
			t.Fatalf("events panel after 15 s: %q", ev)
		}
		time.Sleep(300 * time.Millisecond)
	}
	b.Screenshot("16-events")

	// Revoke: the app shows it is disconnected.
	// Disconnect asks first; a "no" changes nothing.
	b.Run("revoke, then think again",
		chromedp.Evaluate[chromedp.Void](`window.confirm = function (m) { window.asked = m; return false; }`),
		chromedp.Click("#revoke"))
	if asked := browsertest.Get(b, "asked", chromedp.Evaluate[string](`String(window.asked)`)); !strings.Contains(asked, "Disconnect") {
		t.Errorf("Disconnect did not ask first: %q", asked)
	}
	b.Run("revoke", chromedp.Evaluate[chromedp.Void](`window.confirm = function () { return true; }`),
		chromedp.Click("#revoke"), chromedp.WaitVisible("#state"))
	b.Screenshot("17-disconnected")
	if got := b.Text(); !strings.Contains(got, "disconnected") || strings.Count(got, "disconnected your bunq account") > 0 {
		t.Errorf("after revoke (said once, by the page): %q", got)
	}

	// A page that does not exist says so, with a way back.
	b.Run("not found", chromedp.Navigate(d.appURL+"no-such-page"), chromedp.WaitVisible(`//a[@href="/demo/"]`))
	b.Screenshot("18-not-found")
	if got := b.Text(); !strings.Contains(got, "There is no such page") {
		t.Errorf("not-found page: %q", got)
	}
}

// demoPay fills in and sends the payment form and returns the id of the
// new, pending payment.
func demoPay(t *testing.T, b *browsertest.Browser, appURL, amount, description string) string {
	t.Helper()
	b.Run("pay "+amount,
		chromedp.Navigate(appURL),
		chromedp.WaitVisible("#pay-submit"),
		chromedp.SendKeys("#amount", amount),
		chromedp.SendKeys("#iban", "NL02 ABNA 0123 4567 89"),
		chromedp.SendKeys("#name", "Bakkerij de Korenschoof"),
		chromedp.SendKeys("#description", description),
		chromedp.Click("#pay-submit"),
		chromedp.WaitVisible("[data-poll].status-pending"),
		chromedp.WaitVisible("#bank-app"),
	)
	id := browsertest.Get(b, "pending payment", chromedp.Evaluate[string](`document.querySelector("[data-poll]").id`))
	id, ok := strings.CutPrefix(id, "status-")
	if !ok || id == "" {
		t.Fatalf("the pending payment's status has id %q", id)
	}
	if got := browsertest.Get(b, "bank app link", chromedp.AttributeValue("#bank-app", "target")); got.Value != "_blank" {
		t.Errorf("the bunq app link opens in target %q, want a new tab", got.Value)
	}
	return id
}

// demoWatcher proves a page is never navigated or reloaded while it
// follows a payment: check finds the mark it left on the window.
type demoWatcher struct {
	t    *testing.T
	b    *browsertest.Browser
	mark string
	at   string
}

// demoWatch marks the page's window and counts its status polls (by
// wrapping fetch, which demo.js looks up on each call).
func demoWatch(t *testing.T, b *browsertest.Browser) *demoWatcher {
	t.Helper()
	w := &demoWatcher{t: t, b: b, mark: "tab-" + strconv.FormatInt(rand.Int64(), 36), at: b.Location()}
	b.Run("mark the page", chromedp.Evaluate[chromedp.Void](`(function (mark) {
		window.demoMark = mark;
		window.demoPolls = 0;
		var f = window.fetch;
		window.fetch = function (url, opts) {
			if (String(url).indexOf("/status") >= 0) window.demoPolls++;
			return f.call(window, url, opts);
		};
	})(`+strconv.Quote(w.mark)+`)`))
	return w
}

func (w *demoWatcher) check(when string) {
	w.t.Helper()
	if got := browsertest.Get(w.b, "page mark", chromedp.Evaluate[string](`String(window.demoMark)`)); got != w.mark {
		w.t.Fatalf("%s: the page was navigated or reloaded (mark %q, want %q)", when, got, w.mark)
	}
	if got := w.b.Location(); got != w.at {
		w.t.Fatalf("%s: the page moved from %s to %s", when, w.at, got)
	}
}

func (w *demoWatcher) polls() int {
	w.t.Helper()
	return browsertest.Get(w.b, "polls", chromedp.Evaluate[int](`window.demoPolls`))
}

// demoHistory returns the statuses of a payment's history as shown.
func demoHistory(t *testing.T, b *browsertest.Browser, id string) []string {
	t.Helper()
	return browsertest.Get(b, "status history", chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll("#history-`+id+` .history-status")).map(e => e.textContent)`))
}

// shownMinor reads an amount as the demo shows it ("€ 12.50", "−€ 3.00").
func shownMinor(t *testing.T, s string) int64 {
	t.Helper()
	s = strings.TrimSpace(s)
	rest, neg := strings.CutPrefix(s, "−")
	rest, ok := strings.CutPrefix(rest, "€ ")
	m, err := tpp.ParseMinor(strings.ReplaceAll(rest, ",", ""))
	if !ok || err != nil {
		t.Fatalf("amount %q as shown: %v", s, err)
	}
	if neg {
		m = -m
	}
	return m
}

// shownEUR shows minor units as the demo does ("€ 1,234.50").
func shownEUR(minor int64) string {
	sign := ""
	if minor < 0 {
		sign, minor = "−", -minor
	}
	whole, frac, _ := strings.Cut(tpp.FormatMinor(minor), ".")
	for i := len(whole) - 3; i > 0; i -= 3 {
		whole = whole[:i] + "," + whole[i:]
	}
	return sign + "€ " + whole + "." + frac
}

// demoTail returns the last n lines of s.
func demoTail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestDemoChecksEveryAddressFirst: a taken port (here the metrics one)
// stops the demo before it writes or deletes anything, naming the setting.
func TestDemoChecksEveryAddressFirst(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := filepath.Join(t.TempDir(), "data")
	args := append(demoArgs(t, dir, "127.0.0.1:0"), "--metrics-listen", taken.Addr().String())
	var out, errs strings.Builder
	err = run(context.Background(), append([]string{"demo"}, args...), &out, &errs)
	if err == nil || !strings.Contains(err.Error(), "--metrics-listen") {
		t.Fatalf("demo with a taken metrics port: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the demo wrote %s before failing: %v", dir, err)
	}
	// --reset deletes nothing either.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(dir, "tpp.db")
	if err := os.WriteFile(keep, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), append([]string{"demo", "--reset"}, args...), &out, &errs); err == nil {
		t.Fatal("demo --reset with a taken port started")
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("--reset deleted data before the port check failed: %v", err)
	}
}
