package browsertest_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/bunqtpp/tpp/internal/browsertest"
)

// TestClickThroughAForm proves the harness drives a real page: it submits a
// form and follows the redirect, as the consent flow does.
func TestClickThroughAForm(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(`<!doctype html><title>t</title><form method="post" action="/go"><label>Name <input name="n" id="n"></label><button id="b" type="submit">Go</button></form>`))
	})
	mux.HandleFunc("POST /go", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/done?n="+r.FormValue("n"), http.StatusSeeOther)
	})
	mux.HandleFunc("GET /done", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte("<!doctype html><title>done</title><p>hello " + r.URL.Query().Get("n") + "</p>"))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	b := browsertest.New(t)
	b.Run("fill and submit",
		chromedp.Navigate(srv.URL+"/"),
		chromedp.SendKeys("#n", "anna"),
		chromedp.Click("#b"),
		// CSS: a plain string is a search, which also matches "p" inside
		// the tag name input, which is on the form page already.
		chromedp.WaitVisible(chromedp.CSS("p")),
	)
	if got := b.Location(); !strings.HasSuffix(got, "/done?n=anna") {
		t.Fatalf("location = %q", got)
	}
	if got := b.Text(); !strings.Contains(got, "hello anna") {
		t.Fatalf("text = %q", got)
	}
}

// TestFollowNewTab proves a target=_blank link opens a second tab of the
// same browser (same cookies) that FollowNewTab drives, while the first
// tab stays as it was: a value the test put on its window is still there.
func TestFollowNewTab(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "who", Value: "anna", Path: "/"})
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(`<!doctype html><title>first</title><a id="open" href="/other" target="_blank" rel="noopener">open</a>`))
	})
	mux.HandleFunc("GET /other", func(w http.ResponseWriter, r *http.Request) {
		who := "nobody"
		if c, err := r.Cookie("who"); err == nil {
			who = c.Value
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte("<!doctype html><title>other</title><p>hello " + who + "</p>"))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	b := browsertest.New(t)
	b.Run("first page", chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible("#open"),
		chromedp.Evaluate[chromedp.Void](`window.marker = "kept"`))
	tab := b.FollowNewTab("open the link", chromedp.Click("#open"))
	tab.Run("second page", chromedp.WaitVisible(chromedp.CSS("p")))
	if got := tab.Location(); got != srv.URL+"/other" {
		t.Errorf("new tab at %q", got)
	}
	if got := tab.Text(); got != "hello anna" {
		t.Errorf("new tab says %q: not the same browser's cookies", got)
	}
	tab.Close()
	b.Activate()
	if got := browsertest.Get(b, "marker", chromedp.Evaluate[string](`window.marker`)); got != "kept" {
		t.Errorf("first tab's marker = %q: it navigated", got)
	}
	if got := b.Location(); got != srv.URL+"/" {
		t.Errorf("first tab at %q", got)
	}
}
