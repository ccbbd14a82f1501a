package registration

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/certs"
)

// TestCertificate returns a Request for the test certificate in dir
// (cert.pem, key.pem, chain.pem), generating one for organization with
// every PSD2 role when dir has none; generated tells which.
func TestCertificate(dir, organization string, now time.Time) (req Request, generated bool, err error) {
	req = Request{Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem"), Chain: filepath.Join(dir, "chain.pem")}
	if _, err := os.Stat(req.Cert); !errors.Is(err, os.ErrNotExist) {
		return req, false, nil
	}
	g, err := certs.Generate(rand.Reader, now, certs.Options{
		Roles:        []certs.Role{certs.RoleAISP, certs.RolePISP, certs.RoleCBPII},
		Organization: organization,
	})
	if err != nil {
		return req, false, fmt.Errorf("generate test certificate: %w", err)
	}
	if _, err := g.WriteFiles(dir, certs.FileNames{}, false); err != nil {
		return req, false, fmt.Errorf("write test certificate: %w", err)
	}
	return req, true, nil
}

// Forget clears what an earlier run registered with apiBase but keeps the
// row's creation time. An emulated bank starts empty every time: register
// would otherwise try to reuse a dead installation.
func Forget(ctx context.Context, store tpp.RegistrationStore, apiBase string) error {
	old, err := store.Registration(ctx, apiBase)
	if err != nil {
		return nil // nothing registered there
	}
	*old = tpp.Registration{APIBaseURL: old.APIBaseURL, CreatedAt: old.CreatedAt}
	if err := store.SaveRegistration(ctx, old); err != nil {
		return fmt.Errorf("reset the emulated bank's registration: %w", err)
	}
	return nil
}

// PrefixWriter prefixes each write (one progress line) with Prefix.
type PrefixWriter struct {
	W      io.Writer
	Prefix string
}

func (p PrefixWriter) Write(b []byte) (int, error) {
	if _, err := io.WriteString(p.W, p.Prefix); err != nil {
		return 0, err
	}
	return p.W.Write(b)
}
