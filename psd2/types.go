package psd2

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Amount is bunq's money value: a decimal string and an ISO 4217 currency.
// It is never a float; a bare JSON number from the bank is kept as its text.
type Amount struct {
	Value    string `json:"value"`
	Currency string `json:"currency"`
}

// UnmarshalJSON accepts "value" as a string or, leniently, a JSON number
// (kept as its literal text, never converted to a float).
func (a *Amount) UnmarshalJSON(b []byte) error {
	if v, cur, ok := plainAmount(b); ok {
		a.Value, a.Currency = v, cur
		return nil
	}
	var raw struct {
		Value    json.RawMessage `json:"value"`
		Currency string          `json:"currency"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	a.Currency = raw.Currency
	a.Value = ""
	v := bytes.TrimSpace(raw.Value)
	switch {
	case len(v) == 0 || string(v) == "null":
	case v[0] == '"':
		if s, ok := plainString(v); ok {
			a.Value = s
		} else if err := json.Unmarshal(v, &a.Value); err != nil {
			return err
		}
	case v[0] == '-' || (v[0] >= '0' && v[0] <= '9'):
		a.Value = string(v)
	default:
		return fmt.Errorf("psd2: amount value %s is not a decimal", v)
	}
	return nil
}

// plainAmount reads the usual form of an amount, an object of only
// "value" and "currency" with plain string values, without a nested
// json.Unmarshal (a few per account or payment); ok is false for any other
// form, which UnmarshalJSON then decodes in full.
func plainAmount(b []byte) (value, currency string, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return "", "", false
	}
	for {
		i = skipSpace(b, i+1)
		key, next, ok := plainStringAt(b, i)
		if !ok {
			return "", "", false
		}
		i = skipSpace(b, next)
		if i >= len(b) || b[i] != ':' {
			return "", "", false
		}
		val, next, ok := plainStringAt(b, skipSpace(b, i+1))
		if !ok {
			return "", "", false
		}
		switch key {
		case "value":
			value = val
		case "currency":
			currency = val
		default:
			return "", "", false
		}
		i = skipSpace(b, next)
		if i >= len(b) {
			return "", "", false
		}
		if b[i] == '}' {
			return value, currency, skipSpace(b, i+1) == len(b)
		}
		if b[i] != ',' {
			return "", "", false
		}
	}
}

// plainStringAt reads the plain string literal (see plainString) starting
// at b[i] and returns its text and the index after it.
func plainStringAt(b []byte, i int) (string, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return "", 0, false
	}
	end := bytes.IndexByte(b[i+1:], '"')
	if end < 0 {
		return "", 0, false
	}
	s, ok := plainString(b[i : i+end+2])
	return s, i + end + 2, ok
}

// plainString returns the text of a JSON string literal without escapes,
// sparing a json.Unmarshal for the common case; ok is false otherwise.
func plainString(b []byte) (string, bool) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return "", false
	}
	for _, c := range b[1 : len(b)-1] {
		if c == '\\' || c == '"' || c < 0x20 || c >= 0x80 {
			return "", false
		}
	}
	return string(b[1 : len(b)-1]), true
}

// Time is a bunq timestamp ("2017-01-13 13:19:16.215235", UTC). An empty or
// unparsable value decodes to the zero time rather than failing the whole
// answer; Raw keeps the text.
type Time struct {
	time.Time
	Raw string
}

const bunqTimeLayout = "2006-01-02 15:04:05.999999"

// UnmarshalJSON implements json.Unmarshaler.
func (t *Time) UnmarshalJSON(b []byte) error {
	*t = Time{}
	if string(b) == "null" {
		return nil
	}
	s, ok := plainString(b)
	if !ok && json.Unmarshal(b, &s) != nil {
		return nil // lenient: a non-string timestamp is treated as absent
	}
	t.Raw = s
	for _, layout := range []string{bunqTimeLayout, time.RFC3339Nano, "2006-01-02"} {
		if v, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			t.Time = v
			return nil
		}
	}
	return nil
}

// MarshalJSON writes the bank's format (or the raw text it came with).
func (t Time) MarshalJSON() ([]byte, error) {
	if t.Time.IsZero() {
		if t.Raw == "" {
			return []byte("null"), nil
		}
		return json.Marshal(t.Raw)
	}
	return json.Marshal(t.Time.UTC().Format("2006-01-02 15:04:05.000000"))
}

// Pointer is an alias of a party: {"type": "IBAN"|"EMAIL"|"PHONE_NUMBER", "value", "name"}.
// name is required by bunq for IBAN counterparties.
type Pointer struct {
	Type  string `json:"type"`
	Value string `json:"value"`
	Name  string `json:"name,omitempty"`
}

// IBANPointer is a Pointer to an IBAN with the holder's name.
func IBANPointer(iban, name string) Pointer { return Pointer{Type: "IBAN", Value: iban, Name: name} }

// LabelUser is bunq's label of a user inside other objects.
type LabelUser struct {
	UUID           string `json:"uuid,omitempty"`
	DisplayName    string `json:"display_name,omitempty"`
	Country        string `json:"country,omitempty"`
	PublicNickName string `json:"public_nick_name,omitempty"`
}

// LabelMonetaryAccount is how bunq shows a party of a payment.
type LabelMonetaryAccount struct {
	IBAN        string     `json:"iban,omitempty"`
	DisplayName string     `json:"display_name,omitempty"`
	Country     string     `json:"country,omitempty"`
	LabelUser   *LabelUser `json:"label_user,omitempty"`
	IsLight     bool       `json:"is_light,omitempty"`
	SwiftBIC    string     `json:"swift_bic,omitempty"`
}

// User types of the session and /user answers.
const (
	UserTypePerson                 = "UserPerson"
	UserTypeCompany                = "UserCompany"
	UserTypeAPIKey                 = "UserApiKey"
	UserTypePaymentServiceProvider = "UserPaymentServiceProvider"
)

// User is any of bunq's user objects; Type names which. Fields a type lacks
// stay empty, and Raw keeps the full inner object (for unknown types too).
type User struct {
	Type           string    `json:"-"`
	ID             int64     `json:"id"`
	Created        Time      `json:"created"`
	Updated        Time      `json:"updated"`
	PublicUUID     string    `json:"public_uuid"`
	DisplayName    string    `json:"display_name"`
	PublicNickName string    `json:"public_nick_name"`
	FirstName      string    `json:"first_name"`
	LastName       string    `json:"last_name"`
	LegalName      string    `json:"legal_name"`
	Name           string    `json:"name"` // UserCompany
	Status         string    `json:"status"`
	SubStatus      string    `json:"sub_status"`
	Alias          []Pointer `json:"alias"`
	SessionTimeout int64     `json:"session_timeout"`
	Language       string    `json:"language"`
	Region         string    `json:"region"`
	// CertificateDistinguishedName is set for UserPaymentServiceProvider.
	CertificateDistinguishedName string `json:"certificate_distinguished_name"`
	// RequestedBy and GrantedBy are set for UserApiKey: the TPP and the
	// bank customer who granted it access.
	RequestedBy *User           `json:"-"`
	GrantedBy   *User           `json:"-"`
	Raw         json.RawMessage `json:"-"`
}

func decodeUser(typ string, raw json.RawMessage) (User, error) {
	u := User{Type: typ, Raw: raw}
	if err := json.Unmarshal(raw, &u); err != nil {
		return User{}, fmt.Errorf("decode %s: %w", typ, err)
	}
	u.Type, u.Raw = typ, raw
	if typ == UserTypeAPIKey {
		var anchored struct {
			Requested map[string]json.RawMessage `json:"requested_by_user"`
			Granted   map[string]json.RawMessage `json:"granted_by_user"`
		}
		if err := json.Unmarshal(raw, &anchored); err != nil {
			return User{}, fmt.Errorf("decode %s: %w", typ, err)
		}
		for t, r := range anchored.Requested {
			if v, err := decodeUser(t, r); err == nil {
				u.RequestedBy = &v
			}
		}
		for t, r := range anchored.Granted {
			if v, err := decodeUser(t, r); err == nil {
				u.GrantedBy = &v
			}
		}
	}
	return u, nil
}

// sessionTimeout is the session lifetime bunq gives this user: its own
// session_timeout, or for UserApiKey the requesting user's (reference §3.2).
func (u *User) sessionTimeout() time.Duration {
	s := u.SessionTimeout
	if u.Type == UserTypeAPIKey && u.RequestedBy != nil {
		s = u.RequestedBy.SessionTimeout
	}
	return time.Duration(s) * time.Second
}

// Monetary account types (the element keys of /monetary-account answers).
const (
	AccountTypeBank    = "MonetaryAccountBank"
	AccountTypeSavings = "MonetaryAccountSavings"
	AccountTypeJoint   = "MonetaryAccountJoint"
)

// CoOwner is a co-owner of a joint or savings account.
type CoOwner struct {
	Alias  *LabelUser `json:"alias"`
	Status string     `json:"status"`
}

// MonetaryAccount is any of bunq's monetary account objects. Type is the
// element key (MonetaryAccountBank, MonetaryAccountSavings,
// MonetaryAccountJoint, or a type this client does not know: it is kept,
// with the common fields decoded and the whole object in Raw).
type MonetaryAccount struct {
	Type        string          `json:"-"`
	ID          int64           `json:"id"`
	Created     Time            `json:"created"`
	Updated     Time            `json:"updated"`
	Currency    string          `json:"currency"`
	Description string          `json:"description"`
	DisplayName string          `json:"display_name"`
	DailyLimit  *Amount         `json:"daily_limit"`
	Balance     *Amount         `json:"balance"`
	Alias       []Pointer       `json:"alias"`
	PublicUUID  string          `json:"public_uuid"`
	Status      string          `json:"status"`
	SubStatus   string          `json:"sub_status"`
	Reason      string          `json:"reason"`
	UserID      int64           `json:"user_id"`
	AllCoOwner  []CoOwner       `json:"all_co_owner"`
	SavingsGoal *Amount         `json:"savings_goal"`
	Raw         json.RawMessage `json:"-"`
}

// IBAN returns the account's IBAN alias value and holder name, if any.
func (a *MonetaryAccount) IBAN() (iban, name string) {
	for _, p := range a.Alias {
		if strings.EqualFold(p.Type, "IBAN") {
			return p.Value, p.Name
		}
	}
	return "", ""
}

// Payment is a booked payment on a monetary account. Amount is negative for
// money going out of MonetaryAccountID.
type Payment struct {
	ID                   int64                `json:"id"`
	Created              Time                 `json:"created"`
	Updated              Time                 `json:"updated"`
	MonetaryAccountID    int64                `json:"monetary_account_id"`
	Amount               Amount               `json:"amount"`
	Alias                LabelMonetaryAccount `json:"alias"`
	CounterpartyAlias    LabelMonetaryAccount `json:"counterparty_alias"`
	Description          string               `json:"description"`
	Type                 string               `json:"type"`
	SubType              string               `json:"sub_type"`
	MerchantReference    string               `json:"merchant_reference"`
	BatchID              int64                `json:"batch_id"`
	ScheduledID          int64                `json:"scheduled_id"`
	BalanceAfterMutation *Amount              `json:"balance_after_mutation"`
}

// PaymentRequest is the body of a payment (POST …/payment). The bank only
// allows it between the user's own accounts under OAuth; PISPs use draft payments.
type PaymentRequest struct {
	Amount            Amount  `json:"amount"`
	CounterpartyAlias Pointer `json:"counterparty_alias"`
	Description       string  `json:"description"`
	MerchantReference string  `json:"merchant_reference,omitempty"`
}

// DraftPaymentEntry is one payment of a draft payment.
type DraftPaymentEntry struct {
	ID                int64   `json:"id,omitempty"`
	Amount            Amount  `json:"amount"`
	CounterpartyAlias Pointer `json:"counterparty_alias"`
	Description       string  `json:"description"`
	MerchantReference string  `json:"merchant_reference,omitempty"`
}

// DraftPaymentEntryRead is an entry of a draft payment as the bank shows
// it: the parties are labels.
type DraftPaymentEntryRead struct {
	ID                int64                `json:"id"`
	Amount            Amount               `json:"amount"`
	Alias             LabelMonetaryAccount `json:"alias"`
	CounterpartyAlias LabelMonetaryAccount `json:"counterparty_alias"`
	Description       string               `json:"description"`
	MerchantReference string               `json:"merchant_reference"`
	Type              string               `json:"type"`
}

// Schedule makes a draft payment a draft scheduled payment.
type Schedule struct {
	TimeStart      string `json:"time_start"`
	TimeEnd        string `json:"time_end,omitempty"`
	RecurrenceUnit string `json:"recurrence_unit"` // ONCE|HOURLY|DAILY|WEEKLY|MONTHLY|YEARLY
	RecurrenceSize int    `json:"recurrence_size"`
}

// Draft and PSP draft payment statuses (bunq-api.md §5.4, corrected by
// §12.1: real PSP drafts also reach COMPLETED, money moved, and EXPIRED,
// never answered). Others may exist: readers must not guess.
const (
	StatusPending   = "PENDING"
	StatusAccepted  = "ACCEPTED"
	StatusCompleted = "COMPLETED"
	StatusRejected  = "REJECTED"
	StatusCancelled = "CANCELLED"
	StatusExpired   = "EXPIRED"
)

// DraftPaymentRequest is the body that creates a draft payment.
type DraftPaymentRequest struct {
	Entries []DraftPaymentEntry `json:"entries"`
	// NumberOfRequiredAccepts: "currently only 1 is valid"; 0 sends 1.
	NumberOfRequiredAccepts int       `json:"number_of_required_accepts"`
	Status                  string    `json:"status,omitempty"`
	Schedule                *Schedule `json:"schedule,omitempty"`
}

// DraftPaymentUpdate is the body of PUT …/draft-payment/{id}. bunq's schema
// requires entries and number_of_required_accepts on update too, so they are
// always sent; pass the draft's current entries to change only the status.
type DraftPaymentUpdate struct {
	Status                   string              `json:"status,omitempty"`
	Entries                  []DraftPaymentEntry `json:"entries"`
	NumberOfRequiredAccepts  int                 `json:"number_of_required_accepts"`
	PreviousUpdatedTimestamp string              `json:"previous_updated_timestamp,omitempty"`
}

// DraftPaymentResponse is a user's answer to a draft payment.
type DraftPaymentResponse struct {
	Status           string     `json:"status"`
	UserAliasCreated *LabelUser `json:"user_alias_created"`
}

// DraftPayment is a payment the account holder must accept in the bunq app.
type DraftPayment struct {
	ID                int64                   `json:"id"`
	Created           Time                    `json:"created"`
	Updated           Time                    `json:"updated"`
	MonetaryAccountID int64                   `json:"monetary_account_id"`
	UserAliasCreated  *LabelUser              `json:"user_alias_created"`
	Responses         []DraftPaymentResponse  `json:"responses"`
	Status            string                  `json:"status"`
	Type              string                  `json:"type"`
	Entries           []DraftPaymentEntryRead `json:"entries"`
	// Object is the resulting payment (type-keyed, e.g. {"Payment": {…}}),
	// present once the draft has been accepted.
	Object   json.RawMessage `json:"object"`
	Schedule *Schedule       `json:"schedule"`
}

// PaymentID returns the id of the resulting Payment once the draft was accepted.
func (d *DraftPayment) PaymentID() (int64, bool) {
	if len(d.Object) == 0 || string(d.Object) == "null" {
		return 0, false
	}
	var obj map[string]struct {
		ID int64 `json:"id"`
	}
	if json.Unmarshal(d.Object, &obj) != nil {
		return 0, false
	}
	if p, ok := obj["Payment"]; ok && p.ID != 0 {
		return p.ID, true
	}
	return 0, false
}

// PSPDraftPaymentRequest creates a payment-service-provider draft payment:
// a single payment the customer approves together with the OAuth authorization.
type PSPDraftPaymentRequest struct {
	SenderIBAN       string `json:"sender_iban"`
	SenderName       string `json:"sender_name,omitempty"`
	CounterpartyIBAN string `json:"counterparty_iban"`
	CounterpartyName string `json:"counterparty_name"`
	Description      string `json:"description"`
	Amount           Amount `json:"amount"`
	Status           string `json:"status,omitempty"`
}

// PSPDraftPayment is a payment-service-provider draft payment as the bank shows it.
type PSPDraftPayment struct {
	ID           int64  `json:"id"`
	SenderIBAN   string `json:"sender_iban"`
	ReceiverIBAN string `json:"receiver_iban"`
	Amount       Amount `json:"amount"`
	Status       string `json:"status"`
}

// FundsRequest asks whether an account covers an amount (CBPII).
type FundsRequest struct {
	PointerIBAN Pointer `json:"pointer_iban"`
	Amount      Amount  `json:"amount"`
}

// OAuthClient is the TPP's OAuth client at bunq.
type OAuthClient struct {
	ID          int64         `json:"id"`
	Status      string        `json:"status"`
	DisplayName string        `json:"display_name"`
	ClientID    string        `json:"client_id"`
	Secret      string        `json:"secret"`
	CallbackURL []CallbackURL `json:"callback_url"`
}

// String hides the client secret.
func (o OAuthClient) String() string {
	return fmt.Sprintf("OAuthClient{ID:%d Status:%s ClientID:%s callbacks:%d}", o.ID, o.Status, o.ClientID, len(o.CallbackURL))
}

// GoString hides the client secret.
func (o OAuthClient) GoString() string { return o.String() }

// CallbackURL is a redirect URL registered for the OAuth client.
type CallbackURL struct {
	ID      int64  `json:"id"`
	Created Time   `json:"created"`
	Updated Time   `json:"updated"`
	URL     string `json:"url"`
}

// NotificationFilter is one URL callback subscription.
type NotificationFilter struct {
	Category           string `json:"category"`
	NotificationTarget string `json:"notification_target"`
}

// RequestInquiry is the body of a payment request (…/request-inquiry).
type RequestInquiry struct {
	AmountInquired    Amount  `json:"amount_inquired"`
	CounterpartyAlias Pointer `json:"counterparty_alias"`
	Description       string  `json:"description"`
	AllowBunqme       bool    `json:"allow_bunqme"`
}
