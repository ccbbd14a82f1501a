package clientadmin

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/storage"
)

// Create shows the secrets once; list shows the client, active.
func TestCreateThenList(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "tpp.db")
	st, err := storage.OpenCLI(ctx, db, tpp.SystemClock{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	key := "k1:" + strings.Repeat("ab", 32)
	var out bytes.Buffer
	err = Run(ctx, Request{Sub: "create", DB: db, MasterKey: key,
		New: tpp.NewClient{Name: "Corner Shop", ReturnURLs: []string{"https://shop.example/back"}}}, &out)
	if err != nil || !strings.Contains(out.String(), "API key (shown once") {
		t.Fatalf("create: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := Run(ctx, Request{Sub: "list", DB: db}, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "Corner Shop") || !strings.Contains(lines[1], "active") {
		t.Fatalf("list:\n%s", out.String())
	}
}
