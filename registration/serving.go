package registration

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/oauth"
	"github.com/bunqtpp/tpp/psd2"
)

// ForServing loads the registration with apiBase that 'tpp serve' runs on
// and the TPP's API context in it. It refuses one without an OAuth client,
// with another callback URL than publicURL's, or with an expired
// certificate, naming the command that fixes it (bankEnv as given).
func ForServing(ctx context.Context, store tpp.RegistrationStore, apiBase, bankEnv, publicURL string, now time.Time) (*tpp.Registration, *psd2.Context, error) {
	reg, err := store.Registration(ctx, apiBase)
	if tpp.ErrorCode(err) == tpp.ENotFound {
		return nil, nil, fmt.Errorf("this TPP is not registered with %s: run 'tpp register --env %s' first", apiBase, bankEnv)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("load registration: %w", err)
	}
	if reg.ClientID == "" || reg.ClientSecret == "" {
		return nil, nil, fmt.Errorf("the registration with %s has no OAuth client: run 'tpp register' again", apiBase)
	}
	wantCallback := strings.TrimRight(publicURL, "/") + oauth.CallbackPath
	if reg.CallbackURL != wantCallback {
		return nil, nil, fmt.Errorf("the OAuth callback registered at the bank is %s, but --public-url gives %s: run 'tpp register --public-url %s' again", reg.CallbackURL, wantCallback, publicURL)
	}
	if err := certificateInForce(reg, now); err != nil {
		return nil, nil, err
	}
	bc := new(psd2.Context)
	if err := json.Unmarshal(reg.Context, bc); err != nil {
		return nil, nil, fmt.Errorf("stored TPP context: %w", err)
	}
	return reg, bc, nil
}

// certificateInForce refuses to serve on a registration whose QSeal
// certificate has expired: bunq refuses such a TPP's calls, and a service
// that starts anyway only fails its users one request at a time. ('tpp
// register' refuses a certificate that is not yet valid, so a stored one
// always started before its registration.)
func certificateInForce(reg *tpp.Registration, now time.Time) error {
	if reg.CertNotAfter.IsZero() {
		return fmt.Errorf("the registration with %s records no certificate: run 'tpp register' again", reg.APIBaseURL)
	}
	if !now.Before(reg.CertNotAfter) {
		return fmt.Errorf("the QSeal certificate registered with %s (%s) expired at %s: renew it (or make a test one with 'tpp certs generate') and run 'tpp register' again with it",
			reg.APIBaseURL, reg.CertSubject, reg.CertNotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// SaveSession writes the TPP's renewed session (bc) back to its
// registration. It re-reads the registration first: if 'tpp register'
// replaced it (a new certificate) while the service ran, the old context
// must not overwrite it.
func SaveSession(ctx context.Context, store tpp.RegistrationStore, running *tpp.Registration, bc *psd2.Context, log *slog.Logger) error {
	b, err := json.Marshal(bc)
	if err != nil {
		return err
	}
	reg, err := store.Registration(ctx, running.APIBaseURL)
	if err != nil {
		return err
	}
	if reg.CertFingerprint != running.CertFingerprint {
		log.Warn("the registration changed while running (re-registered with another certificate): restart to use it")
		return nil
	}
	reg.Context = b
	reg.SessionExpiry = bc.SessionExpiry()
	return store.SaveRegistration(ctx, reg)
}
