package pisp

import (
	"net/url"
	"time"

	"github.com/bunqtpp/tpp"
)

// PaymentJSON is a payment as the API shows it (schema Payment).
type PaymentJSON struct {
	ID            string             `json:"id"`
	ConsentID     string             `json:"consent_id"`
	Status        string             `json:"status"`
	AccountID     string             `json:"account_id"`
	Amount        tpp.Money          `json:"amount"`
	Counterparty  Party              `json:"counterparty"`
	Description   string             `json:"description"`
	Reference     *string            `json:"reference"`
	BankDraftID   *int64             `json:"bank_draft_id"`
	StatusHistory []StatusChangeJSON `json:"status_history"`
	CreatedAt     string             `json:"created_at"`
	UpdatedAt     string             `json:"updated_at"`
}

// StatusChangeJSON is one entry of a status history.
type StatusChangeJSON struct {
	Status string `json:"status"`
	At     string `json:"at"`
}

// SinglePaymentJSON is a single payment as the API shows it (schema
// SinglePayment).
type SinglePaymentJSON struct {
	ID            string             `json:"id"`
	Status        string             `json:"status"`
	AuthorizeURL  *string            `json:"authorize_url"`
	Debtor        Party              `json:"debtor"`
	Creditor      Party              `json:"creditor"`
	Amount        tpp.Money          `json:"amount"`
	Description   string             `json:"description"`
	ReturnURL     string             `json:"return_url"`
	StatusHistory []StatusChangeJSON `json:"status_history"`
	CreatedAt     string             `json:"created_at"`
	UpdatedAt     string             `json:"updated_at"`
}

// PaymentListJSON is one page of payments.
type PaymentListJSON struct {
	Data       []PaymentJSON `json:"data"`
	NextCursor *string       `json:"next_cursor"`
}

func timeJSON(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func history(p *tpp.Payment) []StatusChangeJSON {
	out := make([]StatusChangeJSON, 0, len(p.StatusHistory))
	for _, h := range p.StatusHistory {
		out = append(out, StatusChangeJSON{Status: string(h.Status), At: timeJSON(h.At)})
	}
	if len(out) == 0 {
		// Never empty: every payment was pending once.
		out = append(out, StatusChangeJSON{Status: string(tpp.PaymentPending), At: timeJSON(p.CreatedAt)})
	}
	return out
}

// PaymentView renders a draft payment.
func PaymentView(p *tpp.Payment) PaymentJSON {
	j := PaymentJSON{
		ID: p.ID, ConsentID: p.ConsentID, Status: string(p.Status), AccountID: tpp.AccountID(p.AccountID),
		Amount:       p.Amount(),
		Counterparty: Party{IBAN: p.CounterpartyIBAN, Name: p.CounterpartyName},
		Description:  p.Description, StatusHistory: history(p),
		CreatedAt: timeJSON(p.CreatedAt), UpdatedAt: timeJSON(p.UpdatedAt),
	}
	if p.Reference != "" {
		r := p.Reference
		j.Reference = &r
	}
	if p.BunqID != 0 {
		id := p.BunqID
		j.BankDraftID = &id
	}
	return j
}

// singleView renders a single payment; authorizeURL is empty once the user
// can no longer act on it.
func singleView(p *tpp.Payment, authorizeURL string) SinglePaymentJSON {
	j := SinglePaymentJSON{
		ID: p.ID, Status: string(p.Status),
		Debtor:   Party{IBAN: p.DebtorIBAN, Name: p.DebtorName},
		Creditor: Party{IBAN: p.CounterpartyIBAN, Name: p.CounterpartyName},
		Amount:   p.Amount(), Description: p.Description, ReturnURL: p.ReturnURL, StatusHistory: history(p),
		CreatedAt: timeJSON(p.CreatedAt), UpdatedAt: timeJSON(p.UpdatedAt),
	}
	if authorizeURL != "" {
		j.AuthorizeURL = &authorizeURL
	}
	return j
}

// PaymentLocation is the URL of a draft payment.
func PaymentLocation(consentID, paymentID string) string {
	return "/v1/consents/" + url.PathEscape(consentID) + "/payments/" + url.PathEscape(paymentID)
}

// SinglePaymentLocation is the URL of a single payment.
func SinglePaymentLocation(paymentID string) string {
	return "/v1/single-payments/" + url.PathEscape(paymentID)
}
