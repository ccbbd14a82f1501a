package webhook_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/bunqtpp/tpp/webhook"
)

// A fintech's receiver: verify the raw body against the signing secret,
// then deduplicate on webhook-id, because delivery is at least once.
func ExampleVerify() {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	var mu sync.Mutex
	seen := map[string]bool{} // in production: a store with a TTL beyond the retry window

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "read error", http.StatusBadRequest)
			return
		}
		if err := webhook.Verify(secret, r.Header, body, time.Now(), webhook.DefaultTolerance); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		dup := seen[r.Header.Get(webhook.HeaderID)]
		seen[r.Header.Get(webhook.HeaderID)] = true
		mu.Unlock()
		if dup {
			w.WriteHeader(http.StatusOK) // already handled: acknowledge, do nothing
			return
		}
		fmt.Println("handling", r.Header.Get(webhook.HeaderID))
		w.WriteHeader(http.StatusNoContent)
	})

	send := func(id, sigSecret string) int {
		body := `{"type":"consent.updated","data":{"consent_id":"con_1","status":"active"}}`
		now := time.Now()
		sig, _ := webhook.Sign(sigSecret, id, now, []byte(body))
		req := httptest.NewRequest(http.MethodPost, "/hooks", strings.NewReader(body))
		req.Header.Set(webhook.HeaderID, id)
		req.Header.Set(webhook.HeaderTimestamp, fmt.Sprint(now.Unix()))
		req.Header.Set(webhook.HeaderSignature, sig)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		return rec.Code
	}
	forged, _ := webhook.NewSecret()
	fmt.Println(send("evt_1", secret))
	fmt.Println(send("evt_1", secret)) // a retry of the same event
	fmt.Println(send("evt_2", forged))
	// Output:
	// handling evt_1
	// 204
	// 200
	// 401
}
