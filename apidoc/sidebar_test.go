package apidoc_test

import (
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/bunqtpp/tpp/internal/browsertest"
)

// TestSidebarMarksCurrentSection: in a real browser with scripts off, the
// sidebar link of the endpoint or section the reader jumped to is marked,
// and the mark follows the reader to another one.
func TestSidebarMarksCurrentSection(t *testing.T) {
	srv := newEngine(t)
	b := browsertest.New(t)
	b.Scripts(false)
	marked := func(name string) []string {
		t.Helper()
		return browsertest.Get(b, name, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll(".sidebar a"))
			.filter(a => a.matches(":target-current") && getComputedStyle(a).backgroundColor !== getComputedStyle(document.querySelector(".sidebar a:not(:target-current)")).backgroundColor)
			.map(a => a.getAttribute("href"))`))
	}
	for _, anchor := range []string{"listAccounts", "confirmFunds", "tag-payments", "errors"} {
		b.Run("open #"+anchor, chromedp.Navigate(srv.URL+"/docs#"+anchor), chromedp.WaitVisible("#"+anchor),
			chromedp.WaitReady(chromedp.CSS(`.sidebar a[href="#`+anchor+`"]:target-current`)))
		if got := marked(anchor); len(got) != 1 || got[0] != "#"+anchor {
			t.Errorf("at /docs#%s the sidebar marks %q, want exactly #%s", anchor, got, anchor)
		}
	}
	b.Screenshot("marked-errors") // for people: how the mark looks
	b.Run("follow a sidebar link", chromedp.Click(chromedp.CSS(`.sidebar a[href="#getSinglePayment"]`)),
		chromedp.WaitReady(chromedp.CSS(`.sidebar a[href="#getSinglePayment"]:target-current`)))
	if got := marked("after click"); len(got) != 1 || got[0] != "#getSinglePayment" {
		t.Errorf("after following the sidebar link to #getSinglePayment it marks %q", got)
	}
}
