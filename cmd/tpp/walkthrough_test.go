package main

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/bunqtpp/tpp/internal/browsertest"
	"github.com/bunqtpp/tpp/internal/testenv"
)

var (
	walkKey  = regexp.MustCompile(`export TPP_API_KEY=(\S+)`)
	walkCurl = regexp.MustCompile(`curl -s (\S+/v1/consents) .* -d '(\{.*\})'`)
)

// TestDemoCurlWalkthroughEndsOnAWorkingPage follows the walk-through 'tpp
// demo' prints: the printed curl request creates a consent, its
// authorize_url goes through the emulated bunq in a browser, and the page
// the browser lands on shows the consent as active and the next command,
// not an error.
func TestDemoCurlWalkthroughEndsOnAWorkingPage(t *testing.T) {
	testenv.Heavy(t)
	t.Parallel()
	d := startDemo(t, demoArgs(t, t.TempDir(), "127.0.0.1:0")...)
	out := d.out.String()
	key, curl := walkKey.FindStringSubmatch(out), walkCurl.FindStringSubmatch(out)
	if key == nil || curl == nil {
		t.Fatalf("no export and curl lines in the walk-through:\n%s", out)
	}
	req, _ := http.NewRequest(http.MethodPost, curl[1], strings.NewReader(curl[2]))
	req.Header.Set("Authorization", "Bearer "+key[1])
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var consent struct {
		ID           string `json:"id"`
		AuthorizeURL string `json:"authorize_url"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&consent); err != nil || resp.StatusCode != http.StatusCreated || consent.AuthorizeURL == "" {
		t.Fatalf("the printed curl request: %d, %+v, %v", resp.StatusCode, consent, err)
	}

	b := browsertest.New(t)
	b.Run("authorize_url", chromedp.Navigate(consent.AuthorizeURL), chromedp.WaitVisible(`//button[contains(., "Continue to bunq")]`))
	b.Run("continue to bunq", chromedp.Click(`//button[contains(., "Continue to bunq")]`), chromedp.WaitVisible(`//h1[contains(., "Log in to bunq")]`))
	b.Run("pick the first sandbox user", chromedp.Click(`//button[contains(., "Continue")]`), chromedp.WaitVisible(`//button[@value="approve"]`))
	b.Run("approve", chromedp.Click(`//button[@value="approve"]`), chromedp.WaitVisible("#next-command"))
	b.CheckLayout("walkthrough-end")
	if got := browsertest.Get(b, "status", chromedp.Text("#elsewhere-status")); got != "active" {
		t.Errorf("the page shows the consent as %q, want active", got)
	}
	if got := browsertest.Get(b, "next command", chromedp.Text("#next-command")); !strings.Contains(got, "/v1/consents/"+consent.ID+"/accounts") {
		t.Errorf("next command %q does not read the consent's accounts", got)
	}
	if text := b.Text(); strings.Contains(text, key[1]) {
		t.Error("the page shows the API key")
	}
}
