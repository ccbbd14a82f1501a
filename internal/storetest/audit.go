package storetest

import (
	"context"
	"strings"
	"testing"

	"github.com/bunqtpp/tpp"
)

func testAuditLogIsAppendOnly(t *testing.T, open Open) {
	ctx := context.Background()
	f := newFixture(t, open)
	c, _ := f.client(t)
	con := f.consent(t, c, "u")
	if err := f.audit.AppendAudit(ctx, tpp.AuditRecord{Actor: tpp.ActorBank, Action: "bank.read",
		ConsentID: con.ID, RequestID: "bunq-req-1", Detail: "accounts listed"}); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`UPDATE audit_log SET detail = 'tampered'`,
		`UPDATE audit_log SET actor = 'psu' WHERE consent_id = '` + con.ID + `'`,
		`DELETE FROM audit_log`,
		`DELETE FROM audit_log WHERE seq = 1`,
	} {
		_, err := f.db.ExecContext(context.Background(), stmt)
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want the append-only trigger", stmt, err)
		}
	}
	recs, err := f.audit.ListAudit(ctx, tpp.AuditFilter{ConsentID: con.ID}, 0, 0)
	if err != nil || len(recs) != 2 || recs[1].Action != "bank.read" || recs[1].RequestID != "bunq-req-1" ||
		!recs[1].At.Equal(f.clock.Now()) {
		t.Fatalf("records = %+v, %v", recs, err)
	}
	// Paging by seq.
	rest, _ := f.audit.ListAudit(ctx, tpp.AuditFilter{ConsentID: con.ID}, recs[0].Seq, 10)
	if len(rest) != 1 || rest[0].Seq != recs[1].Seq {
		t.Fatalf("after seq: %+v", rest)
	}
	if err := f.audit.AppendAudit(ctx, tpp.AuditRecord{Action: "x"}); err == nil {
		t.Fatal("record without actor accepted")
	}
	if _, err := f.audit.ListAudit(ctx, tpp.AuditFilter{}, 0, 0); err == nil {
		t.Fatal("unfiltered list accepted")
	}
}
