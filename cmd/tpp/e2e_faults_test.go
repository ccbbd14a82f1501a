package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/internal/banktest"
)

// countRows counts rows of the TPP's database, read as an operator would.
func countRows(t *testing.T, dbPath, query string, args ...any) int {
	t.Helper()
	db, err := sql.Open("sqlite3", dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Redis stopped under a running 'tpp serve': routes that need it answer
// 503 service_unavailable with Retry-After (not 500), nothing is stored or
// sent to the bank, the key is not left in flight, and with Redis back the
// same request succeeds once.
func TestFaultRedisDown(t *testing.T) {
	t.Parallel()
	o := newOpsHarness(t, opsOptions{})
	o.serve(t)
	con := o.activeConsent(t, "accounts", "payments")
	acct := o.firstAccount(t, con)
	body := paymentBody(acct, o.payee(t).IBAN, "4.20", "Redis down")
	o.Env.ResetStats(t)

	o.Redis.Stop(t)
	var r apiResponse
	// Within a second the parsed context may still serve: wait for Redis
	// to be needed.
	waitUntil(t, 10*time.Second, "an account read to need Redis", func() bool {
		r = o.apiAs(o.APIKey, http.MethodGet, "/v1/consents/"+con+"/accounts", nil, attended)
		return r.Status != http.StatusOK
	})
	if r.Status != http.StatusServiceUnavailable || r.Body.str("code") != "service_unavailable" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("account read with Redis down: %d %v %v", r.Status, r.Body, r.Header)
	}
	p := o.createPayment(con, "redis-down-1", body)
	if p.Status != http.StatusServiceUnavailable || p.Body.str("code") != "service_unavailable" || p.Header.Get("Retry-After") == "" {
		t.Fatalf("payment with Redis down: %d %v %v", p.Status, p.Body, p.Header)
	}
	if n := countRows(t, o.DBPath, `SELECT count(*) FROM payments`); n != 0 {
		t.Errorf("%d payments stored while Redis was down", n)
	}
	if n := countRows(t, o.DBPath, `SELECT count(*) FROM idempotency_records WHERE key = 'redis-down-1'`); n != 0 {
		t.Errorf("the key was left in flight")
	}
	if n := o.Env.Stats(t)[opsDraftCreate]; n != 0 {
		t.Errorf("the bank got %d draft creates while Redis was down", n)
	}

	o.Redis.Restart(t)
	waitUntil(t, 15*time.Second, "a payment with Redis back", func() bool {
		p = o.createPayment(con, "redis-down-1", body)
		return p.Status != http.StatusServiceUnavailable
	})
	if p.Status != http.StatusCreated {
		t.Fatalf("payment with Redis back: %d %v", p.Status, p.Body)
	}
	if n := o.Env.Stats(t)[opsDraftCreate]; n != 1 {
		t.Errorf("the bank got %d draft creates in all, want 1", n)
	}
	if n := countRows(t, o.DBPath, `SELECT count(*) FROM payments`); n != 1 {
		t.Errorf("%d payments stored, want 1", n)
	}
}

// Another process holds the database's write lock: a write answers 503
// service_unavailable with Retry-After after the busy timeout, /readyz
// names sqlite_write, nothing is stored; released, the write goes through.
func TestFaultSQLiteLocked(t *testing.T) {
	t.Parallel()
	o := newOpsHarness(t, opsOptions{})
	o.serve(t)
	consent := map[string]any{"user_ref": "locked", "scopes": []string{"accounts"}, "return_url": o.ReturnURL}

	db, err := sql.Open("sqlite3", o.DBPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	before := countRows(t, o.DBPath, `SELECT count(*) FROM consents`)
	r := o.apiAs(o.APIKey, http.MethodPost, "/v1/consents", consent, nil)
	if r.Status != http.StatusServiceUnavailable || r.Body.str("code") != "service_unavailable" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("consent with the database locked: %d %v %v", r.Status, r.Body, r.Header)
	}
	var rep readyReport
	waitUntil(t, 10*time.Second, "/readyz to name sqlite_write", func() bool {
		res, err := http.Get(o.URL + "/readyz")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		rep = readyReport{}
		_ = jsonDecode(res.Body, &rep)
		return res.StatusCode == http.StatusServiceUnavailable && rep.Checks["sqlite_write"].Status == "error"
	})
	if rep.Checks["sqlite"].Status != "ok" {
		t.Errorf("/readyz blames reads too: %+v", rep)
	}
	if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, o.DBPath, `SELECT count(*) FROM consents`); n != before {
		t.Errorf("consents %d → %d while the database was locked", before, n)
	}
	if r := o.apiAs(o.APIKey, http.MethodPost, "/v1/consents", consent, nil); r.Status != http.StatusCreated {
		t.Fatalf("consent after release: %d %v", r.Status, r.Body)
	}
}

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }

// The bank takes a draft payment but the connection drops before its
// answer: the TPP finds the draft at the bank and answers 201 with it (no
// second draft, no blind 500); a GET whose connection drops is retried by
// the client's own loop and answered. Stored and bank agree.
func TestFaultBankDropsConnections(t *testing.T) {
	t.Parallel()
	o := newOpsHarness(t, opsOptions{})
	o.serve(t)
	con := o.activeConsent(t, "accounts", "payments")
	acct := o.firstAccount(t, con)
	accountNum, err := tpp.ParseAccountID(acct)
	if err != nil {
		t.Fatal(err)
	}
	o.Env.ResetStats(t)
	o.Env.Fault(t, banktest.Fault{Method: http.MethodPost, Path: opsDraftPath, Kind: banktest.FaultDrop, Count: 1})
	p := o.createPayment(con, "drop-1", paymentBody(acct, o.payee(t).IBAN, "6.10", "Dropped answer"))
	if p.Status != http.StatusCreated || bankDraftID(p.Body) == 0 {
		t.Fatalf("create with a dropped answer: %d %v", p.Status, p.Body)
	}
	id := p.Body.str("id")
	if n := o.Env.Stats(t)[opsDraftCreate]; n != 1 {
		t.Errorf("the bank got %d draft creates, want 1", n)
	}
	if got := o.bankDrafts(t, con, accountNum)[id]; got != 1 {
		t.Errorf("the bank holds %d drafts for %s, want 1", got, id)
	}
	if n := countRows(t, o.DBPath, `SELECT count(*) FROM payments WHERE id = ? AND bunq_id = ? AND status = 'pending'`, id, bankDraftID(p.Body)); n != 1 {
		t.Errorf("stored payment does not carry the bank's draft id")
	}

	o.Env.Fault(t, banktest.Fault{Method: http.MethodGet, Path: "/v1/user/*/monetary-account/*/draft-payment/*", Kind: banktest.FaultDrop, Count: 1})
	g := o.apiAs(o.APIKey, http.MethodGet, "/v1/consents/"+con+"/payments/"+id, nil, nil)
	if g.Status != http.StatusOK || g.Body.str("status") != "pending" {
		t.Fatalf("read with a dropped connection: %d %v", g.Status, g.Body)
	}
}
