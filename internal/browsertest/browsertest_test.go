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
		chromedp.WaitVisible("p"),
	)
	if got := b.Location(); !strings.HasSuffix(got, "/done?n=anna") {
		t.Fatalf("location = %q", got)
	}
	if got := b.Text(); !strings.Contains(got, "hello anna") {
		t.Fatalf("text = %q", got)
	}
}
