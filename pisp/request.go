package pisp

import (
	"strings"
	"unicode/utf8"

	"github.com/bunqtpp/tpp"
)

// Limits of text fields (the API document's maxLength values).
const (
	maxDescription = 140
	maxReference   = 140
	maxName        = 70
)

// PaymentRequest is the body of POST /v1/consents/{id}/payments. Amounts
// are strings: JSON numbers are refused by the decoder.
type PaymentRequest struct {
	AccountID    string     `json:"account_id"`
	Amount       *tpp.Money `json:"amount"`
	Counterparty *Party     `json:"counterparty"`
	Description  string     `json:"description"`
	Reference    *string    `json:"reference"`
}

// Party is an account holder: an IBAN and a name.
type Party struct {
	IBAN string `json:"iban"`
	Name string `json:"name"`
}

// SinglePaymentRequest is the body of POST /v1/single-payments. It has
// the shape of the answer (SinglePaymentJSON) without what the TPP adds.
type SinglePaymentRequest struct {
	Debtor      *Party     `json:"debtor"`
	Creditor    *Party     `json:"creditor"`
	Amount      *tpp.Money `json:"amount"`
	Description string     `json:"description"`
	ReturnURL   string     `json:"return_url"`
}

// draftInput is a validated PaymentRequest.
type draftInput struct {
	accountID   int64
	amountMinor int64
	currency    string
	iban, name  string
	description string
	reference   string
}

// singleInput is a validated SinglePaymentRequest.
type singleInput struct {
	debtorIBAN, debtorName     string
	creditorIBAN, creditorName string
	amountMinor                int64
	currency                   string
	description                string
	returnURL                  string
}

func (r *PaymentRequest) validate() (draftInput, error) {
	var in draftInput
	if r.AccountID == "" {
		return in, tpp.Errorf(tpp.EInvalid, "account_id is required: an id from the accounts list")
	}
	id, err := tpp.ParseAccountID(r.AccountID)
	if err != nil {
		return in, err
	}
	in.accountID = id
	if in.amountMinor, in.currency, err = money(r.Amount); err != nil {
		return in, err
	}
	if r.Counterparty == nil {
		return in, tpp.Errorf(tpp.EInvalid, "counterparty is required: {\"iban\", \"name\"}")
	}
	if in.iban, err = iban("counterparty.iban", r.Counterparty.IBAN); err != nil {
		return in, err
	}
	if in.name, err = name("counterparty.name", r.Counterparty.Name); err != nil {
		return in, err
	}
	if in.description, err = text("description", r.Description, maxDescription, true); err != nil {
		return in, err
	}
	if r.Reference != nil {
		if in.reference, err = text("reference", *r.Reference, maxReference, false); err != nil {
			return in, err
		}
	}
	return in, nil
}

func (r *SinglePaymentRequest) validate(client *tpp.FintechClient) (singleInput, error) {
	var in singleInput
	var err error
	if r.Debtor == nil {
		return in, tpp.Errorf(tpp.EInvalid, "debtor is required: {\"iban\", \"name\"} of the account that pays")
	}
	if r.Creditor == nil {
		return in, tpp.Errorf(tpp.EInvalid, "creditor is required: {\"iban\", \"name\"} of the account that is paid")
	}
	if in.debtorIBAN, err = iban("debtor.iban", r.Debtor.IBAN); err != nil {
		return in, err
	}
	if !bunqIBAN(in.debtorIBAN) {
		return in, tpp.Errorf(tpp.EInvalidIBAN, "debtor.iban must be the IBAN of a bunq account (NLxx BUNQ …): "+
			"bunq takes single payments only from its own accounts")
	}
	if in.debtorName, err = name("debtor.name", r.Debtor.Name); err != nil {
		return in, err
	}
	if in.creditorIBAN, err = iban("creditor.iban", r.Creditor.IBAN); err != nil {
		return in, err
	}
	if in.creditorName, err = name("creditor.name", r.Creditor.Name); err != nil {
		return in, err
	}
	if in.debtorIBAN == in.creditorIBAN {
		return in, tpp.Errorf(tpp.EInvalidIBAN, "debtor.iban and creditor.iban are the same account")
	}
	if in.amountMinor, in.currency, err = money(r.Amount); err != nil {
		return in, err
	}
	if in.description, err = text("description", r.Description, maxDescription, true); err != nil {
		return in, err
	}
	if r.ReturnURL == "" {
		return in, tpp.Errorf(tpp.EInvalidReturnURL, "return_url is required")
	}
	if !client.AllowsReturnURL(r.ReturnURL) {
		return in, tpp.Errorf(tpp.EInvalidReturnURL, "return_url must exactly match one of the return URLs registered for your client")
	}
	in.returnURL = r.ReturnURL
	return in, nil
}

// bunqIBAN reports whether an IBAN (electronic form) is one bunq issues:
// Dutch with bank code BUNQ. bunq refuses a PSP draft from any other.
func bunqIBAN(iban string) bool {
	return len(iban) == 18 && strings.HasPrefix(iban, "NL") && iban[4:8] == "BUNQ"
}

func money(m *tpp.Money) (int64, string, error) {
	if m == nil {
		return 0, "", tpp.Errorf(tpp.EInvalidAmount, "amount is required: {\"amount\": \"12.50\", \"currency\": \"EUR\"}")
	}
	minor, err := tpp.ParseMoney(*m)
	if err != nil {
		return 0, "", err
	}
	return minor, m.Currency, nil
}

func iban(field, s string) (string, error) {
	if s == "" {
		return "", tpp.Errorf(tpp.EInvalidIBAN, "%s is required", field)
	}
	if len(s) > 42 {
		return "", tpp.Errorf(tpp.EInvalidIBAN, "%s is too long for an IBAN", field)
	}
	v, err := tpp.NormalizeIBAN(s)
	if err != nil {
		return "", tpp.Errorf(tpp.EInvalidIBAN, "%s: %s", field, tpp.ErrorMessage(err))
	}
	return v, nil
}

func name(field, s string) (string, error) {
	if strings.TrimSpace(s) == "" {
		return "", tpp.Errorf(tpp.EInvalid, "%s is required", field)
	}
	if err := tpp.CheckDisplayText(field, tpp.EInvalid, s); err != nil {
		return "", err
	}
	if utf8.RuneCountInString(s) > maxName {
		return "", tpp.Errorf(tpp.EInvalid, "%s is longer than %d characters", field, maxName)
	}
	return s, nil
}

// text checks a description or reference: the bank shows it to people, so
// nothing tpp.CheckDisplayText refuses and a bounded length.
func text(field, s string, max int, required bool) (string, error) {
	if required && strings.TrimSpace(s) == "" {
		return "", tpp.Errorf(tpp.EInvalidDescription, "%s is required", field)
	}
	if err := tpp.CheckDisplayText(field, tpp.EInvalidDescription, s); err != nil {
		return "", err
	}
	if n := utf8.RuneCountInString(s); n > max {
		return "", tpp.Errorf(tpp.EInvalidDescription, "%s has %d characters; at most %d are allowed", field, n, max)
	}
	return s, nil
}
