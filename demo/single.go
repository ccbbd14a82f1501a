package demo

import (
	"context"
	"net/http"
	"net/url"
	"sync"
)

// SinglePayment is a single payment as the API shows it.
type SinglePayment struct {
	ID           string  `json:"id"`
	Status       string  `json:"status"`
	AuthorizeURL *string `json:"authorize_url"`
	Amount       Money   `json:"amount"`
	Description  string  `json:"description"`
}

func (c *api) createSinglePayment(ctx context.Context, idempotencyKey string, in map[string]any) (*SinglePayment, error) {
	h := http.Header{}
	h.Set("Idempotency-Key", idempotencyKey)
	var out SinglePayment
	err := c.call(ctx, http.MethodPost, "/v1/single-payments", h, in, &out)
	return &out, err
}

func (c *api) singlePayment(ctx context.Context, id string) (*SinglePayment, error) {
	var out SinglePayment
	err := c.call(ctx, http.MethodGet, "/v1/single-payments/"+url.PathEscape(id), nil, nil, &out)
	return &out, err
}

// singles remembers which demo user started which single payment, so a
// browser is shown only its own payment's outcome. In memory: the demo's
// users live as long as the process.
type singles struct {
	mu    sync.Mutex
	byUse map[string]map[string]bool // user → payment ids
}

func (s *singles) add(user, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byUse == nil {
		s.byUse = map[string]map[string]bool{}
	}
	if s.byUse[user] == nil {
		s.byUse[user] = map[string]bool{}
	}
	s.byUse[user][id] = true
}

func (s *singles) owns(user, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byUse[user][id]
}

// paySingle makes a single payment from the selected account and sends the
// browser to bunq to approve it; it comes back to returned with payment_id.
func (a *App) paySingle(ctx context.Context, r *http.Request, user, consentID, bankUser string, f payForm) (string, error) {
	if f.Key == "" || len(f.Key) > 255 {
		return "", &Problem{Code: "idempotency_key_reused"}
	}
	acc, err := a.account(ctx, r, consentID, f.AccountID)
	if err != nil {
		return "", err
	}
	debtor := acc.Name
	if debtor == "" {
		debtor = bankUser
	}
	p, err := a.api.createSinglePayment(ctx, f.Key, map[string]any{
		"debtor":      map[string]string{"iban": acc.IBAN, "name": debtor},
		"creditor":    map[string]string{"iban": f.IBAN, "name": f.Name},
		"amount":      Money{Amount: f.Amount, Currency: acc.Currency},
		"description": f.Description,
		"return_url":  a.cfg.PublicURL + ReturnPath,
	})
	if err != nil {
		return "", err
	}
	if p.AuthorizeURL == nil {
		return "", &Problem{Code: "unexpected_answer", Detail: "the single payment has no authorize_url"}
	}
	a.singles.add(user, p.ID)
	return *p.AuthorizeURL, nil
}

// singleReturned shows where a single payment ended: back on the
// dashboard with its status, read from the API (the URL's is a hint).
func (a *App) singleReturned(w http.ResponseWriter, r *http.Request, user, id string) {
	if user == "" || !a.singles.owns(user, id) {
		a.fail(w, r, http.StatusForbidden, "This payment was not started in this browser. Go to the start page to make one here.")
		return
	}
	p, err := a.api.singlePayment(r.Context(), id)
	if err != nil {
		a.fail(w, r, http.StatusBadGateway, humane(err))
		return
	}
	msg := "single_" + p.Status
	if _, ok := flashes[msg]; !ok {
		msg = "single_other"
	}
	http.Redirect(w, r, BasePath+"/?msg="+msg, http.StatusSeeOther)
}
