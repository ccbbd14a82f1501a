package psd2

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"strconv"
)

func (c *Client) userPath(bc *Context, rest string) (string, error) {
	id := bc.UserID()
	if id == 0 {
		return "", ErrNoSession
	}
	return "/user/" + strconv.FormatInt(id, 10) + rest, nil
}

func wrapDecode(cl call, err error) error {
	if err == nil {
		return nil
	}
	return &ResponseError{Method: cl.method, Path: cl.path, Err: err}
}

// get runs a session GET and returns its envelope.
func (c *Client) get(ctx context.Context, bc *Context, path string, q map[string][]string) (*envelope, call, error) {
	return c.getInto(ctx, bc, path, q, nil)
}

// getInto is get with elements decoded along with the envelope (call.into).
func (c *Client) getInto(ctx context.Context, bc *Context, path string, q map[string][]string, into func(string) any) (*envelope, call, error) {
	cl := call{method: http.MethodGet, path: path, query: q, auth: authSession, into: into}
	env, err := c.do(ctx, bc, cl)
	return env, cl, err
}

// create runs a session POST that answers with an Id.
func (c *Client) create(ctx context.Context, bc *Context, path string, body any, sign bool) (int64, error) {
	cl := call{method: http.MethodPost, path: path, body: body, auth: authSession, sign: sign}
	env, err := c.do(ctx, bc, cl)
	if err != nil {
		return 0, err
	}
	id, err := env.id()
	return id, wrapDecode(cl, err)
}

// update runs a session PUT; bunq answers with an Id we do not need.
func (c *Client) update(ctx context.Context, bc *Context, path string, body any, sign bool) error {
	cl := call{method: http.MethodPut, path: path, body: body, auth: authSession, sign: sign}
	_, err := c.doRaw(ctx, bc, cl)
	return err
}

// ---- users

func decodeUsers(env *envelope) ([]User, error) {
	var out []User
	for _, el := range env.Elements {
		u, err := decodeUser(el.Type, el.Value)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

// ListUsers runs GET /user: the users this session can see (one, in practice).
func (c *Client) ListUsers(ctx context.Context, bc *Context) ([]User, error) {
	env, cl, err := c.get(ctx, bc, "/user", nil)
	if err != nil {
		return nil, err
	}
	users, err := decodeUsers(env)
	return users, wrapDecode(cl, err)
}

// GetUser runs GET /user/{id}.
func (c *Client) GetUser(ctx context.Context, bc *Context, id int64) (User, error) {
	env, cl, err := c.get(ctx, bc, "/user/"+strconv.FormatInt(id, 10), nil)
	if err != nil {
		return User{}, err
	}
	users, err := decodeUsers(env)
	if err == nil && len(users) == 0 {
		err = errors.New("no user element")
	}
	if err != nil {
		return User{}, wrapDecode(cl, err)
	}
	return users[0], nil
}

// ---- monetary accounts

// intoAccount decodes every element as a MonetaryAccount, as
// decodeAccounts does.
func intoAccount(string) any { return new(MonetaryAccount) }

func decodeAccounts(env *envelope) ([]MonetaryAccount, error) {
	out := make([]MonetaryAccount, 0, len(env.Elements))
	for _, el := range env.Elements {
		if d, ok := el.Decoded.(*MonetaryAccount); ok {
			d.Type, d.Raw = el.Type, el.Value
			out = append(out, *d)
			continue
		}
		a := MonetaryAccount{}
		if err := json.Unmarshal(el.Value, &a); err != nil {
			return nil, fmt.Errorf("decode %s: %w", el.Type, err)
		}
		a.Type, a.Raw = el.Type, el.Value
		out = append(out, a)
	}
	return out, nil
}

// ListMonetaryAccounts runs GET /user/{userID}/monetary-account: accounts of
// every type (unknown types are kept with their common fields and Raw).
func (c *Client) ListMonetaryAccounts(ctx context.Context, bc *Context, p Page) (*Listing[MonetaryAccount], error) {
	path, err := c.userPath(bc, "/monetary-account")
	if err != nil {
		return nil, err
	}
	env, cl, err := c.getInto(ctx, bc, path, p.query(), intoAccount)
	if err != nil {
		return nil, err
	}
	items, err := decodeAccounts(env)
	if err != nil {
		return nil, wrapDecode(cl, err)
	}
	return &Listing[MonetaryAccount]{Items: items, Pagination: env.Pagination}, nil
}

// GetMonetaryAccount runs GET /user/{userID}/monetary-account/{id}.
func (c *Client) GetMonetaryAccount(ctx context.Context, bc *Context, id int64) (MonetaryAccount, error) {
	path, err := c.userPath(bc, "/monetary-account/"+strconv.FormatInt(id, 10))
	if err != nil {
		return MonetaryAccount{}, err
	}
	env, cl, err := c.get(ctx, bc, path, nil)
	if err != nil {
		return MonetaryAccount{}, err
	}
	items, err := decodeAccounts(env)
	if err == nil && len(items) == 0 {
		err = errors.New("no monetary account element")
	}
	if err != nil {
		return MonetaryAccount{}, wrapDecode(cl, err)
	}
	return items[0], nil
}

// AllMonetaryAccounts walks every page of the account listing.
func (c *Client) AllMonetaryAccounts(ctx context.Context, bc *Context, count int) iter.Seq2[MonetaryAccount, error] {
	return walk(Page{Count: count}, func(p Page) (*Listing[MonetaryAccount], error) {
		return c.ListMonetaryAccounts(ctx, bc, p)
	})
}

// ---- payments

func accountPath(accountID int64, rest string) string {
	return "/monetary-account/" + strconv.FormatInt(accountID, 10) + rest
}

// ListPayments runs GET …/monetary-account/{accountID}/payment: one page,
// newest first.
func (c *Client) ListPayments(ctx context.Context, bc *Context, accountID int64, p Page) (*Listing[Payment], error) {
	return listOf[Payment](ctx, c, bc, accountPath(accountID, "/payment"), "Payment", p)
}

// GetPayment runs GET …/monetary-account/{accountID}/payment/{id}.
func (c *Client) GetPayment(ctx context.Context, bc *Context, accountID, id int64) (Payment, error) {
	return getOf[Payment](ctx, c, bc, accountPath(accountID, "/payment/"+strconv.FormatInt(id, 10)), "Payment")
}

// AllPayments walks the whole payment history from the newest payment to
// the oldest, count per page (bank max 200).
func (c *Client) AllPayments(ctx context.Context, bc *Context, accountID int64, count int) iter.Seq2[Payment, error] {
	return walk(Page{Count: count}, func(p Page) (*Listing[Payment], error) {
		return c.ListPayments(ctx, bc, accountID, p)
	})
}

// CreatePayment runs POST …/payment (signed). Not for PISPs: bunq allows it
// only between the OAuth user's own accounts. Never retried: on a
// *TransportError with Sent, look the payment up before trying again.
func (c *Client) CreatePayment(ctx context.Context, bc *Context, accountID int64, p PaymentRequest) (int64, error) {
	path, err := c.userPath(bc, accountPath(accountID, "/payment"))
	if err != nil {
		return 0, err
	}
	return c.create(ctx, bc, path, p, true)
}

// ---- draft payments

// CreateDraftPayment runs POST …/draft-payment (signed: bunq treats it as
// payment-executing). Never retried.
func (c *Client) CreateDraftPayment(ctx context.Context, bc *Context, accountID int64, d DraftPaymentRequest) (int64, error) {
	path, err := c.userPath(bc, accountPath(accountID, "/draft-payment"))
	if err != nil {
		return 0, err
	}
	if d.NumberOfRequiredAccepts == 0 {
		d.NumberOfRequiredAccepts = 1
	}
	return c.create(ctx, bc, path, d, true)
}

// ListDraftPayments runs GET …/draft-payment.
func (c *Client) ListDraftPayments(ctx context.Context, bc *Context, accountID int64, p Page) (*Listing[DraftPayment], error) {
	return listOf[DraftPayment](ctx, c, bc, accountPath(accountID, "/draft-payment"), "DraftPayment", p)
}

// GetDraftPayment runs GET …/draft-payment/{id}.
func (c *Client) GetDraftPayment(ctx context.Context, bc *Context, accountID, id int64) (DraftPayment, error) {
	return getOf[DraftPayment](ctx, c, bc, accountPath(accountID, "/draft-payment/"+strconv.FormatInt(id, 10)), "DraftPayment")
}

// UpdateDraftPayment runs PUT …/draft-payment/{id}; an update to ACCEPTED
// executes the payment and is signed.
func (c *Client) UpdateDraftPayment(ctx context.Context, bc *Context, accountID, id int64, u DraftPaymentUpdate) error {
	path, err := c.userPath(bc, accountPath(accountID, "/draft-payment/"+strconv.FormatInt(id, 10)))
	if err != nil {
		return err
	}
	if u.Status == StatusAccepted {
		return ErrUserAcceptsDrafts
	}
	if u.NumberOfRequiredAccepts == 0 {
		u.NumberOfRequiredAccepts = 1
	}
	if u.Entries == nil {
		u.Entries = []DraftPaymentEntry{}
	}
	return c.update(ctx, bc, path, u, false)
}

// ErrUserAcceptsDrafts refuses, before anything is sent, an update that
// would accept a draft payment: the user approves drafts in the bunq app,
// never the TPP (bunq answers a grant's attempt with 403; bunq-api.md
// §12.6).
var ErrUserAcceptsDrafts = errors.New("psd2: a draft payment is accepted by the user in the bunq app, never by the TPP")

// ---- payment-service-provider draft payments

// CreatePSPDraftPayment runs POST /user/{userID}/payment-service-provider-draft-payment
// with the PSP's own context. Never retried.
func (c *Client) CreatePSPDraftPayment(ctx context.Context, bc *Context, d PSPDraftPaymentRequest) (int64, error) {
	path, err := c.userPath(bc, "/payment-service-provider-draft-payment")
	if err != nil {
		return 0, err
	}
	return c.create(ctx, bc, path, d, false)
}

// ListPSPDraftPayments runs GET …/payment-service-provider-draft-payment.
func (c *Client) ListPSPDraftPayments(ctx context.Context, bc *Context, p Page) (*Listing[PSPDraftPayment], error) {
	return listOf[PSPDraftPayment](ctx, c, bc, "/payment-service-provider-draft-payment", "PaymentServiceProviderDraftPayment", p)
}

// GetPSPDraftPayment runs GET …/payment-service-provider-draft-payment/{id}.
func (c *Client) GetPSPDraftPayment(ctx context.Context, bc *Context, id int64) (PSPDraftPayment, error) {
	return getOf[PSPDraftPayment](ctx, c, bc, "/payment-service-provider-draft-payment/"+strconv.FormatInt(id, 10), "PaymentServiceProviderDraftPayment")
}

// UpdatePSPDraftPayment sets the status of a PSP draft payment; bunq allows
// only REJECTED or CANCELLED.
func (c *Client) UpdatePSPDraftPayment(ctx context.Context, bc *Context, id int64, status string) error {
	path, err := c.userPath(bc, "/payment-service-provider-draft-payment/"+strconv.FormatInt(id, 10))
	if err != nil {
		return err
	}
	return c.update(ctx, bc, path, map[string]string{"status": status}, false)
}

// ---- confirmation of funds

// ErrFundsResultMissing: bunq answered a funds check with an object that
// carries no has_sufficient_funds (e.g. only {"Id": {"id": …}}, the shape
// bunq's PISP page and OpenAPI document show): the result is unknown. It is
// distinct from an answer of neither shape (a *ResponseError wrapping
// ErrUnexpectedResponse).
var ErrFundsResultMissing = errors.New("psd2: the bank's funds answer carries no has_sufficient_funds")

// ConfirmFunds runs POST /user/{userID}/confirmation-of-funds and returns
// has_sufficient_funds. Both answer shapes are read: {"ConfirmationOfFunds":
// {"has_sufficient_funds": …}} (bunq's Python SDK) and {"Id": {"id": …}}
// (bunq's PISP page and OpenAPI), which answers ErrFundsResultMissing unless
// it carries the field too.
func (c *Client) ConfirmFunds(ctx context.Context, bc *Context, f FundsRequest) (bool, error) {
	path, err := c.userPath(bc, "/confirmation-of-funds")
	if err != nil {
		return false, err
	}
	cl := call{method: http.MethodPost, path: path, body: f, auth: authSession}
	env, err := c.do(ctx, bc, cl)
	if err != nil {
		return false, err
	}
	type result struct {
		ID                 *int64 `json:"id"`
		HasSufficientFunds *bool  `json:"has_sufficient_funds"`
	}
	for _, typ := range []string{"ConfirmationOfFunds", "Id"} {
		v, derr := decodeOne[result](env, typ)
		if derr != nil {
			if _, present := env.first(typ); present {
				return false, wrapDecode(cl, derr)
			}
			continue
		}
		if v.HasSufficientFunds == nil {
			return false, &ResponseError{Method: cl.method, Path: cl.path, Err: fmt.Errorf("%w (%s)", ErrFundsResultMissing, typ)}
		}
		return *v.HasSufficientFunds, nil
	}
	return false, wrapDecode(cl, errors.New("neither a ConfirmationOfFunds nor an Id element"))
}

// ---- OAuth client and callback URLs (PSD2 context)

// CreateOAuthClient runs POST /user/{userID}/oauth-client and returns its id.
// bunq allows one OAuth client at a time.
func (c *Client) CreateOAuthClient(ctx context.Context, bc *Context) (int64, error) {
	path, err := c.userPath(bc, "/oauth-client")
	if err != nil {
		return 0, err
	}
	return c.create(ctx, bc, path, map[string]string{"status": "ACTIVE"}, false)
}

// ListOAuthClients runs GET /user/{userID}/oauth-client.
func (c *Client) ListOAuthClients(ctx context.Context, bc *Context) ([]OAuthClient, error) {
	l, err := listOf[OAuthClient](ctx, c, bc, "/oauth-client", "OauthClient", Page{})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

// GetOAuthClient runs GET /user/{userID}/oauth-client/{id}; it carries the
// client_id, secret and callback URLs.
func (c *Client) GetOAuthClient(ctx context.Context, bc *Context, id int64) (OAuthClient, error) {
	return getOf[OAuthClient](ctx, c, bc, "/oauth-client/"+strconv.FormatInt(id, 10), "OauthClient")
}

// UpdateOAuthClient sets the OAuth client's status (ACTIVE, CANCELLED).
func (c *Client) UpdateOAuthClient(ctx context.Context, bc *Context, id int64, status string) error {
	path, err := c.userPath(bc, "/oauth-client/"+strconv.FormatInt(id, 10))
	if err != nil {
		return err
	}
	return c.update(ctx, bc, path, map[string]string{"status": status}, false)
}

func callbackPath(clientID int64, rest string) string {
	return "/oauth-client/" + strconv.FormatInt(clientID, 10) + "/callback-url" + rest
}

// CreateCallbackURL registers a redirect URL for the OAuth client.
func (c *Client) CreateCallbackURL(ctx context.Context, bc *Context, clientID int64, u string) (int64, error) {
	path, err := c.userPath(bc, callbackPath(clientID, ""))
	if err != nil {
		return 0, err
	}
	return c.create(ctx, bc, path, map[string]string{"url": u}, false)
}

// ListCallbackURLs lists the OAuth client's redirect URLs.
func (c *Client) ListCallbackURLs(ctx context.Context, bc *Context, clientID int64) ([]CallbackURL, error) {
	l, err := listOf[CallbackURL](ctx, c, bc, callbackPath(clientID, ""), "OauthCallbackUrl", Page{})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

// GetCallbackURL reads one redirect URL.
func (c *Client) GetCallbackURL(ctx context.Context, bc *Context, clientID, id int64) (CallbackURL, error) {
	return getOf[CallbackURL](ctx, c, bc, callbackPath(clientID, "/"+strconv.FormatInt(id, 10)), "OauthCallbackUrl")
}

// UpdateCallbackURL changes one redirect URL.
func (c *Client) UpdateCallbackURL(ctx context.Context, bc *Context, clientID, id int64, u string) error {
	path, err := c.userPath(bc, callbackPath(clientID, "/"+strconv.FormatInt(id, 10)))
	if err != nil {
		return err
	}
	return c.update(ctx, bc, path, map[string]string{"url": u}, false)
}

// DeleteCallbackURL removes one redirect URL.
func (c *Client) DeleteCallbackURL(ctx context.Context, bc *Context, clientID, id int64) error {
	path, err := c.userPath(bc, callbackPath(clientID, "/"+strconv.FormatInt(id, 10)))
	if err != nil {
		return err
	}
	_, err = c.doRaw(ctx, bc, call{method: http.MethodDelete, path: path, auth: authSession})
	return err
}

// ---- notification filters (user level)

// Notification categories the TPP subscribes to.
const (
	CategoryOAuth        = "OAUTH"
	CategoryDraftPayment = "DRAFT_PAYMENT"
)

// CreateNotificationFilters runs POST /user/{userID}/notification-filter-url.
// The bank replaces the user's URL filters with the given set and answers
// with the filters now in place.
func (c *Client) CreateNotificationFilters(ctx context.Context, bc *Context, filters []NotificationFilter) ([]NotificationFilter, error) {
	path, err := c.userPath(bc, "/notification-filter-url")
	if err != nil {
		return nil, err
	}
	if filters == nil {
		filters = []NotificationFilter{}
	}
	cl := call{method: http.MethodPost, path: path, auth: authSession,
		body: map[string][]NotificationFilter{"notification_filters": filters}}
	env, err := c.do(ctx, bc, cl)
	if err != nil {
		return nil, err
	}
	out, err := decodeAll[NotificationFilter](env, "NotificationFilterUrl")
	return out, wrapDecode(cl, err)
}

// ListNotificationFilters runs GET /user/{userID}/notification-filter-url.
func (c *Client) ListNotificationFilters(ctx context.Context, bc *Context) ([]NotificationFilter, error) {
	l, err := listOf[NotificationFilter](ctx, c, bc, "/notification-filter-url", "NotificationFilterUrl", Page{})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

// ---- sandbox only

// CreateSandboxUserPerson runs POST /sandbox-user-person (sandbox only; no
// authentication) and returns the new user's API key. The answer cannot be
// verified: there is no installation yet.
func (c *Client) CreateSandboxUserPerson(ctx context.Context) (string, error) {
	return c.sandboxUser(ctx, "/sandbox-user-person")
}

// CreateSandboxUserCompany is CreateSandboxUserPerson for a company.
func (c *Client) CreateSandboxUserCompany(ctx context.Context) (string, error) {
	return c.sandboxUser(ctx, "/sandbox-user-company")
}

func (c *Client) sandboxUser(ctx context.Context, path string) (string, error) {
	cl := call{method: http.MethodPost, path: path, auth: authNone, noVerify: true}
	env, err := c.do(ctx, nil, cl)
	if err != nil {
		return "", err
	}
	v, err := decodeOne[struct {
		APIKey string `json:"api_key"`
	}](env, "ApiKey")
	if err == nil && v.APIKey == "" {
		err = errors.New("ApiKey has no api_key")
	}
	if err != nil {
		return "", wrapDecode(cl, err)
	}
	return v.APIKey, nil
}

// RequestSandboxMoney asks bunq's sandbox "sugar daddy" for money on an
// account (up to 500 EUR per request; paid automatically).
func (c *Client) RequestSandboxMoney(ctx context.Context, bc *Context, accountID int64, value string) (int64, error) {
	return c.CreateRequestInquiry(ctx, bc, accountID, RequestInquiry{
		AmountInquired:    Amount{Value: value, Currency: "EUR"},
		CounterpartyAlias: Pointer{Type: "EMAIL", Value: "sugardaddy@bunq.com", Name: "Sugar Daddy"},
		Description:       "sandbox money",
	})
}

// CreateRequestInquiry runs POST …/monetary-account/{id}/request-inquiry.
func (c *Client) CreateRequestInquiry(ctx context.Context, bc *Context, accountID int64, r RequestInquiry) (int64, error) {
	path, err := c.userPath(bc, accountPath(accountID, "/request-inquiry"))
	if err != nil {
		return 0, err
	}
	return c.create(ctx, bc, path, r, false)
}

// ---- generic helpers

// listOf GETs /user/{userID}<rest> and decodes the elements of type typ.
func listOf[T any](ctx context.Context, c *Client, bc *Context, rest, typ string, p Page) (*Listing[T], error) {
	path, err := c.userPath(bc, rest)
	if err != nil {
		return nil, err
	}
	env, cl, err := c.get(ctx, bc, path, p.query())
	if err != nil {
		return nil, err
	}
	items, err := decodeAll[T](env, typ)
	if err != nil {
		return nil, wrapDecode(cl, err)
	}
	return &Listing[T]{Items: items, Pagination: env.Pagination}, nil
}

// getOf GETs /user/{userID}<rest> and decodes its element of type typ.
func getOf[T any](ctx context.Context, c *Client, bc *Context, rest, typ string) (T, error) {
	var zero T
	path, err := c.userPath(bc, rest)
	if err != nil {
		return zero, err
	}
	env, cl, err := c.get(ctx, bc, path, nil)
	if err != nil {
		return zero, err
	}
	v, err := decodeOne[T](env, typ)
	if err != nil {
		return zero, wrapDecode(cl, err)
	}
	return v, nil
}

// walk yields every item of a listing, page after page in the older
// direction, stopping at the first error (yielded once) or when the
// consumer stops.
func walk[T any](first Page, fetch func(Page) (*Listing[T], error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		p := first
		seen := map[int64]bool{} // guards against a bank that repeats a cursor
		for {
			l, err := fetch(p)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, it := range l.Items {
				if !yield(it, nil) {
					return
				}
			}
			next, ok := l.Pagination.Older()
			if !ok || len(l.Items) == 0 || seen[next.OlderID] {
				return
			}
			seen[next.OlderID] = true
			if next.Count == 0 {
				next.Count = first.Count
			}
			p = next
		}
	}
}
