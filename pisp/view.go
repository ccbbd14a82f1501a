package pisp

import (
	"net/url"
	"time"

	"github.com/bunqtpp/tpp"
)

// PaymentJSON is a payment as the API shows it (schema Payment).
type PaymentJSON struct {
	ID             string             `json:"id"`
	ConsentID      string             `json:"consent_id"`
	Status         string             `json:"status"`
	AccountID      string             `json:"account_id"`
	Amount         tpp.Money          `json:"amount"`
	Counterparty   Party              `json:"counterparty"`
	Description    string             `json:"description"`
	Reference      *string            `json:"reference"`
	BankDraftID    *int64             `json:"bank_draft_id"`
	FailureReason  *string            `json:"failure_reason"`
	FailureMessage *string            `json:"failure_message"`
	StatusHistory  []StatusChangeJSON `json:"status_history"`
	CreatedAt      string             `json:"created_at"`
	UpdatedAt      string             `json:"updated_at"`
}

// StatusChangeJSON is one entry of a status history.
type StatusChangeJSON struct {
	Status string `json:"status"`
	At     string `json:"at"`
}

// SinglePaymentJSON is a single payment as the API shows it (schema
// SinglePayment).
type SinglePaymentJSON struct {
	ID             string             `json:"id"`
	Status         string             `json:"status"`
	AuthorizeURL   *string            `json:"authorize_url"`
	Debtor         Party              `json:"debtor"`
	Creditor       Party              `json:"creditor"`
	Amount         tpp.Money          `json:"amount"`
	Description    string             `json:"description"`
	ReturnURL      string             `json:"return_url"`
	FailureReason  *string            `json:"failure_reason"`
	FailureMessage *string            `json:"failure_message"`
	StatusHistory  []StatusChangeJSON `json:"status_history"`
	CreatedAt      string             `json:"created_at"`
	UpdatedAt      string             `json:"updated_at"`
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

// RejectedByUser is the failure_reason of a payment the user declined in
// the bunq app (the bank gives no code).
const RejectedByUser = "rejected_by_user"

// failureMessages say in words what each failure_reason means.
var failureMessages = map[string]string{
	tpp.EConsentExpired:  "The user did not authorize the payment in time, or bunq let it expire unanswered.",
	"access_denied":      "The user declined at bunq.",
	"cancelled":          "The user cancelled on the consent page.",
	"bank_error":         "The authorization at bunq failed.",
	RejectedByUser:       "The user declined the payment in the bunq app.",
	tpp.EBankRejected:    "bunq refused the payment.",
	tpp.EBankUnavailable: "bunq could not be reached or did not take the payment.",
	tpp.EAccountNotFound: "The account is not one of the user's accounts under this consent.",
	tpp.EConsentRevoked:  "The user withdrew the consent at bunq.",
	tpp.EBankRateLimited: "bunq was rate limiting requests.",
	tpp.EInvalidIBAN:     "bunq refused an IBAN of the payment.",
	tpp.EInvalidCurrency: "The account does not hold the payment's currency.",
}

// failure is why a failed or rejected payment did not go ahead: a stable
// code and a sentence. Both nil otherwise.
func failure(p *tpp.Payment) (reason, message *string) {
	if p.Status != tpp.PaymentFailed && p.Status != tpp.PaymentRejected {
		return nil, nil
	}
	code := p.ErrorCode
	if code == "" && p.Status == tpp.PaymentRejected {
		code = RejectedByUser
	}
	if code == "" {
		code = tpp.EBankRejected
	}
	msg, ok := failureMessages[code]
	if !ok {
		msg = "The payment did not go ahead (" + code + ")."
	}
	return &code, &msg
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
	j.FailureReason, j.FailureMessage = failure(p)
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
	j.FailureReason, j.FailureMessage = failure(p)
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
