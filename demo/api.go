package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// The demo talks to the TPP's public fintech API over HTTP, exactly as a
// fintech's backend would: these are the API's JSON shapes, money as
// decimal strings.

// Money is an amount as the API sends it.
type Money struct {
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
}

// Consent is the part of a consent the demo uses.
type Consent struct {
	ID           string   `json:"id"`
	Status       string   `json:"status"`
	Scopes       []string `json:"scopes"`
	UserRef      string   `json:"user_ref"`
	AuthorizeURL *string  `json:"authorize_url"`
	CreatedAt    string   `json:"created_at"`
	BankUser     *struct {
		DisplayName string `json:"display_name"`
	} `json:"bank_user"`
	Error *string `json:"error"`
}

// Account is a bunq account under a consent. Name is the holder's name,
// Description the user's own label for the account.
type Account struct {
	ID          string `json:"id"`
	IBAN        string `json:"iban"`
	Name        string `json:"holder_name"`
	Description string `json:"label"`
	Type        string `json:"type"`
	Status      string `json:"status"`
	Currency    string `json:"currency"`
	Balance     Money  `json:"balance"`
}

// Transaction is one booked transaction. The API sends its amount as a
// money object; the demo keeps the amount and currency side by side.
type Transaction struct {
	ID           string `json:"id"`
	BookedAt     string `json:"booked_at"`
	Amount       string `json:"-"`
	Currency     string `json:"-"`
	Money        Money  `json:"amount"`
	Counterparty struct {
		IBAN *string `json:"iban"`
		Name string  `json:"name"`
	} `json:"counterparty"`
	Description  string `json:"description"`
	Type         string `json:"type"`
	BalanceAfter *Money `json:"balance_after"`
}

// UnmarshalJSON reads the API's transaction and spreads its money object.
func (t *Transaction) UnmarshalJSON(b []byte) error {
	type wire Transaction // without this method
	var w wire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*t = Transaction(w)
	t.Amount, t.Currency = t.Money.Amount, t.Money.Currency
	return nil
}

// Payment is a payment under a consent.
type Payment struct {
	ID           string `json:"id"`
	ConsentID    string `json:"consent_id"`
	Status       string `json:"status"`
	AccountID    string `json:"account_id"`
	Amount       Money  `json:"amount"`
	Counterparty struct {
		IBAN string `json:"iban"`
		Name string `json:"name"`
	} `json:"counterparty"`
	Description   string         `json:"description"`
	StatusHistory []StatusChange `json:"status_history"`
	CreatedAt     string         `json:"created_at"`
	UpdatedAt     string         `json:"updated_at"`
}

// StatusChange is one entry of a payment's status history.
type StatusChange struct {
	Status string `json:"status"`
	At     string `json:"at"`
}

// Final tells whether a payment's status can no longer change, so the page
// stops asking for it.
func (p *Payment) Final() bool { return p.Status != "pending" }

type page[T any] struct {
	Data       []T     `json:"data"`
	NextCursor *string `json:"next_cursor"`
}

// Problem is an RFC 9457 error answered by the API.
type Problem struct {
	Status         int    `json:"status"`
	Title          string `json:"title"`
	Detail         string `json:"detail"`
	Code           string `json:"code"`
	RequestID      string `json:"request_id"`
	ReauthorizeURL string `json:"reauthorize_url"`
	RetryAfter     int    `json:"-"`
}

func (p *Problem) Error() string {
	return fmt.Sprintf("TPP API: %d %s: %s (request %s)", p.Status, p.Code, p.Detail, p.RequestID)
}

// api is a small client of the TPP's public API.
type api struct {
	base string // the TPP's public URL, without a trailing slash
	key  string
	hc   *http.Client
}

// call sends one request. hdr may be nil; in is JSON-encoded when not nil;
// out is decoded from a 2xx answer. Any other answer becomes a *Problem.
func (c *api) call(ctx context.Context, method, path string, hdr http.Header, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("call the TPP API: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("read the TPP API's answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		p := &Problem{Status: resp.StatusCode}
		if json.Unmarshal(raw, p) != nil || p.Code == "" {
			p.Code, p.Detail = "unexpected_answer", strings.TrimSpace(string(raw))
		}
		p.Status = resp.StatusCode
		if p.RequestID == "" {
			p.RequestID = resp.Header.Get("X-Request-Id")
		}
		p.RetryAfter, _ = strconv.Atoi(resp.Header.Get("Retry-After"))
		return p
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("decode the TPP API's answer to %s %s: %w", method, path, err)
	}
	return nil
}

// attended marks a read as made while the user is present (PSD2): it is
// not counted against the four unattended reads a day.
func attended(ip string, fresh bool) http.Header {
	h := http.Header{}
	if ip != "" {
		h.Set("PSU-IP-Address", ip)
	}
	if fresh {
		h.Set("Cache-Control", "no-cache")
	}
	return h
}

func (c *api) createConsent(ctx context.Context, userRef, returnURL string) (*Consent, error) {
	var out Consent
	err := c.call(ctx, http.MethodPost, "/v1/consents", nil, map[string]any{
		"user_ref": userRef, "scopes": []string{"accounts", "payments", "funds"}, "return_url": returnURL,
	}, &out)
	return &out, err
}

func (c *api) consent(ctx context.Context, id string) (*Consent, error) {
	var out Consent
	err := c.call(ctx, http.MethodGet, "/v1/consents/"+url.PathEscape(id), nil, nil, &out)
	return &out, err
}

func (c *api) consents(ctx context.Context, userRef string) ([]Consent, error) {
	var out page[Consent]
	err := c.call(ctx, http.MethodGet, "/v1/consents?limit=20&user_ref="+url.QueryEscape(userRef), nil, nil, &out)
	return out.Data, err
}

func (c *api) revoke(ctx context.Context, id string) (*Consent, error) {
	var out Consent
	err := c.call(ctx, http.MethodDelete, "/v1/consents/"+url.PathEscape(id), nil, nil, &out)
	return &out, err
}

func (c *api) accounts(ctx context.Context, consentID string, h http.Header) ([]Account, error) {
	var out page[Account]
	err := c.call(ctx, http.MethodGet, "/v1/consents/"+url.PathEscape(consentID)+"/accounts", h, nil, &out)
	return out.Data, err
}

// txQuery selects a page of transactions.
type txQuery struct {
	From, To, Cursor string
	Limit            int
}

func (c *api) transactions(ctx context.Context, consentID, accountID string, q txQuery, h http.Header) ([]Transaction, string, error) {
	v := url.Values{}
	v.Set("limit", strconv.Itoa(q.Limit))
	for k, s := range map[string]string{"from": q.From, "to": q.To, "cursor": q.Cursor} {
		if s != "" {
			v.Set(k, s)
		}
	}
	var out page[Transaction]
	err := c.call(ctx, http.MethodGet, "/v1/consents/"+url.PathEscape(consentID)+"/accounts/"+url.PathEscape(accountID)+"/transactions?"+v.Encode(), h, nil, &out)
	next := ""
	if out.NextCursor != nil {
		next = *out.NextCursor
	}
	return out.Data, next, err
}

// paymentInput is the payment form, as the API wants it.
type paymentInput struct {
	AccountID    string `json:"account_id"`
	Amount       Money  `json:"amount"`
	Counterparty struct {
		IBAN string `json:"iban"`
		Name string `json:"name"`
	} `json:"counterparty"`
	Description string `json:"description"`
}

func (c *api) createPayment(ctx context.Context, consentID, idempotencyKey string, in paymentInput) (*Payment, error) {
	h := http.Header{}
	h.Set("Idempotency-Key", idempotencyKey)
	var out Payment
	err := c.call(ctx, http.MethodPost, "/v1/consents/"+url.PathEscape(consentID)+"/payments", h, in, &out)
	return &out, err
}

func (c *api) payment(ctx context.Context, consentID, paymentID string) (*Payment, error) {
	var out Payment
	err := c.call(ctx, http.MethodGet, "/v1/consents/"+url.PathEscape(consentID)+"/payments/"+url.PathEscape(paymentID), nil, nil, &out)
	return &out, err
}

func (c *api) payments(ctx context.Context, consentID string, limit int) ([]Payment, error) {
	var out page[Payment]
	err := c.call(ctx, http.MethodGet, "/v1/consents/"+url.PathEscape(consentID)+"/payments?limit="+strconv.Itoa(limit), nil, nil, &out)
	return out.Data, err
}

func (c *api) confirmFunds(ctx context.Context, consentID, accountID string, amount Money) (bool, error) {
	var out struct {
		Sufficient *bool `json:"sufficient"`
	}
	err := c.call(ctx, http.MethodPost, "/v1/consents/"+url.PathEscape(consentID)+"/funds-confirmations", nil,
		map[string]any{"account_id": accountID, "amount": amount}, &out)
	if err != nil {
		return false, err
	}
	if out.Sufficient == nil {
		return false, errors.New("the TPP API's funds answer has no 'sufficient'")
	}
	return *out.Sufficient, nil
}

// humane turns an API error into a sentence for the person using the app.
// Problems keep their request id so support can find the logs.
func humane(err error) string {
	var p *Problem
	if !errors.As(err, &p) {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return "That took too long. Please try again."
		}
		return "We could not reach our banking service. Please try again in a moment."
	}
	var msg string
	switch p.Code {
	case "consent_revoked":
		msg = "Your bunq connection has ended. Connect your bunq account again to continue."
	case "consent_expired", "consent_not_active":
		msg = "Your bunq connection is not active. Please connect your bunq account again."
	case "consent_reauth_required":
		msg = "bunq asks you to confirm the connection again (this is needed every 180 days)."
	case "consent_not_found":
		msg = "We could not find your bunq connection. Please connect again."
	case "scope_not_granted":
		msg = "Your bunq connection does not allow this. Reconnect and approve all permissions."
	case "account_not_found":
		msg = "That account is no longer available."
	case "invalid_iban":
		msg = "That IBAN does not look right: check it for a missing or swapped character. An IBAN starts with two letters for the country, for example NL02 ABNA 0123 4567 89."
	case "invalid_amount":
		msg = "Please enter an amount above zero with at most two decimals, for example 12.50 or 12,50."
	case "invalid_currency":
		msg = "That currency is not supported."
	case "invalid_description":
		msg = "The description is too long or has characters the bank does not accept."
	case "invalid_request":
		msg = "Some details are missing or not valid: " + p.Detail
	case "bank_rejected":
		msg = "bunq declined this: " + p.Detail
	case "access_frequency_exceeded":
		msg = "bunq allows only a few background updates a day. Open the app again while you are here to refresh."
	case "rate_limited", "bank_rate_limited":
		msg = "bunq is busy right now. Please try again"
		if p.RetryAfter > 0 {
			msg += " in " + strconv.Itoa(p.RetryAfter) + " seconds"
		}
		msg += "."
	case "bank_unavailable":
		msg = "We could not reach bunq right now. Please try again in a minute."
	case "unauthorized":
		msg = "This demo app's API key was not accepted. Restart 'tpp demo' (or run it with --reset)."
	case "idempotency_key_reused", "idempotency_key_in_flight":
		msg = "This form was already sent. Please fill it in again."
	default:
		msg = "Something went wrong (" + p.Code + ")."
		if p.Status < 500 && p.Detail != "" {
			msg = "Something went wrong: " + p.Detail
		}
	}
	if p.RequestID != "" {
		msg += " Reference: " + p.RequestID + "."
	}
	return msg
}
