package flowdriver

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestBrowserFollowsOnlyItsOwnHost: the consent page's form token is read
// (unescaped), a redirect within the TPP is followed with the cookie, and
// the redirect to the bank is where ToBank stops.
func TestBrowserFollowsOnlyItsOwnHost(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /connect/c1", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "flow", Value: "f1", Path: "/"})
		w.Write([]byte(`<form><input type="hidden" name="csrf_token" value="a&amp;b"></form>`))
	})
	mux.HandleFunc("POST /connect/c1/continue", func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie("flow")
		if err != nil || c.Value != "f1" || r.FormValue("csrf_token") != "a&b" {
			http.Error(w, "no flow", http.StatusBadRequest)
			return
		}
		http.Redirect(w, r, "/hop", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /hop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://bank.invalid/auth?client_id=x&state=s", http.StatusSeeOther)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	u, err := NewBrowser(srv.URL, nil).ToBank(context.Background(), srv.URL+"/connect/c1")
	if err != nil {
		t.Fatal(err)
	}
	if u.Host != "bank.invalid" || u.Query().Get("state") != "s" {
		t.Fatalf("ToBank = %s, want the bank's authorize URL", u)
	}
	// Without a host of its own the browser follows nothing: the first hop
	// after Continue is a 303 within the TPP, which ToBank returns as is.
	u, err = NewBrowser("", nil).ToBank(context.Background(), srv.URL+"/connect/c1")
	if err != nil || u.Path != "/hop" {
		t.Fatalf("ToBank without an own host = %v, %v; want the /hop redirect", u, err)
	}
	if _, _, err := NewBrowser(srv.URL, nil).Open(context.Background(), srv.URL+"/nothing"); err == nil || !strings.Contains(err.Error(), "status 404") {
		t.Fatalf("Open of a missing page: %v", err)
	}
}
