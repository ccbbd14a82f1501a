package storetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/bunqtpp/tpp"
)

func testRegistrationStore(t *testing.T, open Open) {
	f := newFixture(t, open)
	ctx := context.Background()
	s := f.Registrations
	const base = "https://public-api.sandbox.bunq.com"

	if _, err := s.Registration(ctx, base); tpp.ErrorCode(err) != tpp.ENotFound {
		t.Fatalf("missing registration: %v", err)
	}
	exp := time.Date(2026, 5, 6, 7, 8, 9, 123456000, time.UTC)
	reg := &tpp.Registration{APIBaseURL: base, Context: []byte(`{"secret":"ctx-SECRET"}`), UserID: 7, SessionExpiry: exp,
		OAuthClientID: 3, ClientID: "cid", ClientSecret: "oauth-SECRET", CallbackURL: "https://tpp.example/oauth/callback",
		NotificationURL: "https://tpp.example/bank/callbacks", CertSubject: "CN=Test TPP AISP PISP", CertFingerprint: "ab",
		CertNotAfter: exp.Add(time.Hour)}
	if err := s.SaveRegistration(ctx, reg); err != nil {
		t.Fatal(err)
	}
	created := reg.CreatedAt
	got, err := s.Registration(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Context) != string(reg.Context) || got.ClientSecret != "oauth-SECRET" || !got.SessionExpiry.Equal(exp) ||
		got.UserID != 7 || got.OAuthClientID != 3 || got.CallbackURL != reg.CallbackURL || !got.CertNotAfter.Equal(exp.Add(time.Hour)) {
		t.Fatalf("read back %+v", got)
	}
	// Secrets are sealed in the file.
	var raw string
	if err := f.db.GetContext(ctx, &raw, `SELECT context_sealed || client_secret_sealed FROM registration`); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(raw, "SECRET") {
		t.Fatal("registration secrets stored in plaintext")
	}
	// A sealed value moved to another environment's row does not open.
	if _, err := f.db.ExecContext(ctx, `INSERT INTO registration (api_base_url, context_sealed, created_at, updated_at)
		SELECT 'https://api.bunq.com', context_sealed, created_at, updated_at FROM registration`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Registration(ctx, "https://api.bunq.com"); err == nil {
		t.Fatal("context sealed for one environment opened for another")
	}
	// Update keeps CreatedAt, one row per environment.
	f.clock.Add(time.Minute)
	got.CallbackURL = "https://tpp.example/new"
	got.ClientSecret = ""
	if err := s.SaveRegistration(ctx, got); err != nil {
		t.Fatal(err)
	}
	again, err := s.Registration(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	if !again.CreatedAt.Equal(created) || !again.UpdatedAt.After(created) || again.CallbackURL != "https://tpp.example/new" || again.ClientSecret != "" {
		t.Fatalf("after update %+v", again)
	}
	if _, err := f.db.ExecContext(ctx, `DELETE FROM registration WHERE api_base_url = 'https://api.bunq.com'`); err != nil {
		t.Fatal(err)
	}
	all, err := s.Registrations(ctx)
	if err != nil || len(all) != 1 {
		t.Fatalf("Registrations = %v, %v", all, err)
	}
}
