package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bunqtpp/tpp/sandbox"
)

func TestSandboxCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		done <- run(ctx, []string{"sandbox", "--addr", "127.0.0.1:0", "--seed", "7"}, pw, io.Discard)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	lines := map[string]string{}
	for sc.Scan() {
		line := sc.Text()
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ": "); ok {
			lines[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
		if strings.HasPrefix(strings.TrimSpace(line), "API key:") {
			break
		}
	}
	t.Logf("tpp sandbox ready in %v", time.Since(start))
	api := lines["API base"]
	if !strings.HasSuffix(api, "/v1") || !strings.HasSuffix(lines["OAuth authorize"], "/auth") || !strings.HasSuffix(lines["Token URL"], "/v1/token") {
		t.Fatalf("printed URLs: %v", lines)
	}
	if !strings.HasPrefix(lines["API key"], "sandbox_") {
		t.Fatalf("printed credentials: %v", lines)
	}
	go io.Copy(io.Discard, pr)
	// The API answers, with rate limits on by default.
	resp, err := http.Get(strings.TrimSuffix(api, "/v1") + "/_sandbox/users")
	if err != nil {
		t.Fatal(err)
	}
	var users []struct {
		APIKey string `json:"api_key"`
	}
	json.NewDecoder(resp.Body).Decode(&users)
	resp.Body.Close()
	if len(users) == 0 || users[0].APIKey != lines["API key"] {
		t.Fatalf("users %v", users)
	}
	var last int
	for i := 0; i < 4; i++ {
		resp, err := http.Get(api + "/user")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		last = resp.StatusCode
	}
	if last != 429 {
		t.Fatalf("4th GET in 3 s answered %d, want 429 (rate limits on by default)", last)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("did not shut down")
	}
}

func TestSandboxCommandFlags(t *testing.T) {
	if err := run(context.Background(), []string{"sandbox", "--bogus"}, io.Discard, io.Discard); err == nil {
		t.Fatal("unknown flag accepted")
	}
	if err := run(context.Background(), []string{"sandbox", "--addr", "nonsense"}, io.Discard, io.Discard); err == nil {
		t.Fatal("bad address accepted")
	}
}

// TestSandboxNextStepsAreValidCommands: the serve line 'tpp sandbox'
// prints parses as serve's own flags and points at the emulator.
func TestSandboxNextStepsAreValidCommands(t *testing.T) {
	var b strings.Builder
	sandbox.PrintNextSteps(&b, "http://127.0.0.1:5000", "http://127.0.0.1:5001", "http://127.0.0.1:5002")
	var serveLine, registerLine string
	for _, l := range strings.Split(b.String(), "\n") {
		l = strings.TrimSpace(l)
		if rest, ok := strings.CutPrefix(l, "tpp serve "); ok {
			serveLine = rest
		}
		if strings.HasPrefix(l, "tpp register --env http://127.0.0.1:5000 ") {
			registerLine = l
		}
	}
	if serveLine == "" || registerLine == "" {
		t.Fatalf("no serve or register line:\n%s", b.String())
	}
	c, err := parseTestConfig(t, nil, strings.Fields(serveLine)...)
	if err != nil {
		t.Fatalf("the printed serve line does not parse: %v", err)
	}
	if c.BankEnv != "http://127.0.0.1:5000" || c.BankOAuthURL != "http://127.0.0.1:5001/auth" || c.BankTokenURL != "http://127.0.0.1:5002/v1/token" {
		t.Errorf("serve line points at %s, %s, %s", c.BankEnv, c.BankOAuthURL, c.BankTokenURL)
	}
}
