package psd2

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bunqtpp/tpp"
)

// Environment names the three bunq hosts of one environment (reference §1.1).
type Environment struct {
	Name              string
	APIBaseURL        string // host base without /v1, e.g. https://api.bunq.com
	OAuthAuthorizeURL string
	TokenURL          string
}

// The two public bunq environments.
var (
	Sandbox = Environment{
		Name:              "sandbox",
		APIBaseURL:        "https://public-api.sandbox.bunq.com",
		OAuthAuthorizeURL: "https://oauth.sandbox.bunq.com/auth",
		TokenURL:          "https://api-oauth.sandbox.bunq.com/v1/token",
	}
	Production = Environment{
		Name:              "production",
		APIBaseURL:        "https://api.bunq.com",
		OAuthAuthorizeURL: "https://oauth.bunq.com/auth",
		TokenURL:          "https://api.oauth.bunq.com/v1/token",
	}
)

// LookupEnvironment returns the environment called name ("sandbox" or "production").
func LookupEnvironment(name string) (Environment, bool) {
	switch strings.ToLower(name) {
	case "sandbox":
		return Sandbox, true
	case "production":
		return Production, true
	}
	return Environment{}, false
}

// Default header values (those of bunq's SDKs).
const (
	DefaultUserAgent   = "bunqtpp-psd2/1.0"
	DefaultLanguage    = "en_US"
	DefaultRegion      = "nl_NL"
	DefaultGeolocation = "0 0 0 0 000"
)

// Rate limits per installation and endpoint, per 3 s (reference §6.4).
// bunq documents no DELETE limit; DELETE is treated like PUT, the strictest.
const (
	RateWindow        = 3 * time.Second
	RateGET           = 3
	RatePOST          = 5
	RatePUT           = 2
	RateDELETE        = 2
	SessionRateWindow = 30 * time.Second // POST /session-server: 1 per 30 s
)

// Options configure a Client. Only BaseURL is required.
type Options struct {
	// BaseURL is the API host without /v1 (Environment.APIBaseURL).
	BaseURL string
	// HTTPClient sends the requests; http.DefaultClient when nil. Give it a
	// Timeout: a call without answer is reported as *TransportError.
	HTTPClient *http.Client
	// Budget admits calls within bunq's rate limits; NewMemoryBudget(Clock)
	// when nil (right for a single replica; share a Redis budget otherwise).
	Budget Budget
	// RateMargin widens each rate window, because the bank counts arrival
	// times and we count departure times. Default 200 ms; negative for none.
	RateMargin time.Duration
	// SignAll signs every request after installation, not only those bunq
	// requires (session-server, payments, draft payments, the PSD2
	// credential; reference §2.2), as bunq's SDKs do.
	SignAll bool
	// SharedEgress makes device-server and session-server calls of all
	// contexts share one budget key ("egress"): bunq limits them per source
	// IP (session-server: 1 per 30 s), and every context creation of the
	// TPP (and, with a shared budget, of all its replicas) comes from one
	// egress IP. Off: each installation counts on its own.
	SharedEgress bool
	// UserAgent, Language, Region, Geolocation override the default headers.
	UserAgent, Language, Region, Geolocation string
	// Clock tells the time for session expiry; tpp.SystemClock when nil.
	Clock tpp.Clock
	// Logger gets one debug line per call (method, path, status, ids,
	// duration; never tokens or bodies). Nothing is logged when nil.
	Logger *slog.Logger
	// OnRenew is called after a context's session was renewed, so that its
	// owner can persist it. An error is logged; the call that triggered the
	// renewal goes on.
	OnRenew func(ctx context.Context, c *Context) error
	// OnCall is called after every HTTP attempt, with the ids for audit logs.
	OnCall func(CallInfo)
	// MaxAttempts bounds tries of a GET on 429, 5xx, 491 or a transport
	// error (default 3; 1 disables retries). Other methods are never retried
	// blindly.
	MaxAttempts int
	// RetryBase and RetryMax shape the capped exponential backoff with
	// jitter (defaults 200 ms and 5 s).
	RetryBase, RetryMax time.Duration
	// MaxResponseBytes bounds a response body (default 16 MiB).
	MaxResponseBytes int64
	// DeviceDescription is sent to device-server (default "bunqtpp").
	DeviceDescription string
}

// CallInfo describes one HTTP attempt, for logs and the audit trail.
type CallInfo struct {
	Method     string
	Path       string // without query
	Status     int    // 0 when no answer
	RequestID  string
	ResponseID string
	Attempt    int
	Duration   time.Duration
	Signed     bool
	Err        error
}

// Client talks to one bunq environment for any number of contexts. It is
// safe for concurrent use.
type Client struct {
	base   string // BaseURL + "/v1"
	http   *http.Client
	budget Budget
	margin time.Duration
	opt    Options
	clock  tpp.Clock
	log    *slog.Logger
	// buffers holds response body buffers for reuse (*bytes.Buffer).
	buffers sync.Pool
}

// New returns a Client.
func New(o Options) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(o.BaseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("psd2: base URL %q is not an absolute http(s) URL", o.BaseURL)
	}
	base := u.String()
	if !strings.HasSuffix(base, "/v1") {
		base += "/v1"
	}
	c := &Client{base: base, http: o.HTTPClient, budget: o.Budget, opt: o, clock: o.Clock, log: o.Logger}
	if c.http == nil {
		c.http = http.DefaultClient
	}
	if c.clock == nil {
		c.clock = tpp.SystemClock{}
	}
	if c.budget == nil {
		c.budget = NewMemoryBudget(c.clock)
	}
	c.margin = o.RateMargin
	if c.margin == 0 {
		c.margin = 200 * time.Millisecond
	} else if c.margin < 0 {
		c.margin = 0
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.opt.UserAgent == "" {
		c.opt.UserAgent = DefaultUserAgent
	}
	if c.opt.Language == "" {
		c.opt.Language = DefaultLanguage
	}
	if c.opt.Region == "" {
		c.opt.Region = DefaultRegion
	}
	if c.opt.Geolocation == "" {
		c.opt.Geolocation = DefaultGeolocation
	}
	if c.opt.MaxAttempts <= 0 {
		c.opt.MaxAttempts = 3
	}
	if c.opt.RetryBase <= 0 {
		c.opt.RetryBase = 200 * time.Millisecond
	}
	if c.opt.RetryMax <= 0 {
		c.opt.RetryMax = 5 * time.Second
	}
	if c.opt.MaxResponseBytes <= 0 {
		c.opt.MaxResponseBytes = 16 << 20
	}
	if c.opt.DeviceDescription == "" {
		c.opt.DeviceDescription = "bunqtpp"
	}
	return c, nil
}

// authMode says which token goes in X-Bunq-Client-Authentication.
type authMode int

const (
	authNone         authMode = iota // installation, sandbox users
	authInstallation                 // PSD2 credential, device-server, session-server
	authSession                      // everything else
)

// call is one logical API call.
type call struct {
	method string
	path   string // under /v1, starting with "/"
	query  url.Values
	body   any // JSON-encoded; nil sends no body
	auth   authMode
	sign   bool // bunq requires a signature here
	// verify is false only for the installation call itself (no server key yet).
	noVerify bool
	// maxWait, when set, bounds the wait for the rate budget: longer
	// fails with *RenewalThrottledError instead of holding the caller.
	maxWait time.Duration
	// into, when set, names a decode target per element type: such
	// elements are decoded with the envelope, in one pass.
	into func(typ string) any
}

// result is a verified success answer.
type result struct {
	status     int
	body       []byte
	buf        *bytes.Buffer // holds body; back to the pool after decoding
	requestID  string
	responseID string
}

// do runs a call for bc (nil only for authNone calls), renewing the session
// once if the bank refuses it, retrying GETs on temporary failures.
func (c *Client) do(ctx context.Context, bc *Context, cl call) (*envelope, error) {
	res, err := c.doRaw(ctx, bc, cl)
	if err != nil {
		return nil, err
	}
	var env *envelope
	if cl.into != nil {
		env, err = decodeEnvelopeInto(res.body, cl.into)
	} else {
		env, err = decodeEnvelope(res.body)
	}
	// The envelope holds copies of what it needs from the body.
	c.putBuffer(res.buf)
	if err != nil {
		return nil, &ResponseError{Method: cl.method, Path: cl.path, RequestID: res.requestID, ResponseID: res.responseID, Err: err}
	}
	return env, nil
}

func (c *Client) doRaw(ctx context.Context, bc *Context, cl call) (*result, error) {
	var body []byte
	if cl.body != nil {
		var err error
		if body, err = json.Marshal(cl.body); err != nil {
			return nil, fmt.Errorf("psd2: encode %s %s body: %w", cl.method, cl.path, err)
		}
	}
	// The signature covers the body only, so one signature serves every attempt.
	var signature string
	if bc != nil && cl.auth != authNone && (cl.sign || c.opt.SignAll) {
		key, err := bc.sec.signingKey()
		if err != nil {
			return nil, err
		}
		if signature, err = Sign(key, body); err != nil {
			return nil, err
		}
	}
	renewed := false
	for attempt := 1; ; attempt++ {
		token := ""
		switch cl.auth {
		case authInstallation:
			token = bc.sec.installationToken
		case authSession:
			if err := c.ensureSession(ctx, bc); err != nil {
				return nil, err
			}
			token = bc.sessionSnapshot().token
		}
		if err := c.wait(ctx, bc, cl); err != nil {
			return nil, err
		}
		res, err := c.attempt(ctx, bc, cl, body, token, signature, attempt)
		if err == nil {
			return res, nil
		}
		var apiErr *APIError
		if errors.As(err, &apiErr) && (apiErr.InsufficientAuth() || apiErr.Status == http.StatusUnauthorized) && cl.auth == authSession && !renewed {
			// The bank did not act on a refused session: retrying is safe
			// for every method. Renew once (shared by concurrent callers).
			// A bare 401 counts too: bunq's status table says 401 means
			// "token or signature provided is not valid", whatever the text.
			renewed = true
			if rerr := c.renewSession(ctx, bc, token); rerr != nil {
				return nil, errors.Join(err, rerr)
			}
			attempt--
			continue
		}
		if !c.retryable(cl, err) || attempt >= c.opt.MaxAttempts {
			return nil, err
		}
		if err := c.sleep(ctx, c.backoff(attempt)); err != nil {
			return nil, err
		}
	}
}

// retryable: only GETs, and only for answers that may change on their own.
func (c *Client) retryable(cl call, err error) bool {
	if cl.method != http.MethodGet {
		return false
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Temporary()
	}
	var tErr *TransportError
	return errors.As(err, &tErr) && ctxAlive(err)
}

func ctxAlive(err error) bool {
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

func (c *Client) backoff(attempt int) time.Duration {
	d := c.opt.RetryBase << (attempt - 1)
	if d > c.opt.RetryMax || d <= 0 {
		d = c.opt.RetryMax
	}
	// Jitter spreads replicas that failed together: d/2 .. d.
	return d/2 + time.Duration(mrand.Int64N(int64(d/2)+1))
}

func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// wait takes one call from the rate budget. The key is the installation
// (or "egress" for the context creation calls) plus method and path
// without query, as the limits are "per endpoint".
func (c *Client) wait(ctx context.Context, bc *Context, cl call) error {
	limit, window := RateGET, RateWindow
	switch cl.method {
	case http.MethodPost:
		limit = RatePOST
		if cl.path == "/session-server" {
			limit, window = 1, SessionRateWindow
		}
	case http.MethodPut:
		limit = RatePUT
	case http.MethodDelete:
		limit = RateDELETE
	}
	id := "-" // calls before an installation exists
	if bc != nil {
		id = bc.budgetID
	}
	// bunq limits per source IP and endpoint. Context creation calls have
	// one path for every installation, so all contexts (and, with a shared
	// budget, all replicas behind the egress IP) share one budget for them:
	// session-server's 1 per 30 s is the TPP's, not each consent's.
	if c.opt.SharedEgress && cl.method == http.MethodPost && (cl.path == "/session-server" || cl.path == "/device-server") {
		id = "egress"
	}
	key := id + " " + cl.method + " " + cl.path
	wctx := ctx
	if cl.maxWait > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, cl.maxWait)
		defer cancel()
	}
	if err := c.budget.Wait(wctx, key, limit, window+c.margin); err != nil {
		if cl.maxWait > 0 && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			retry := window
			var bd *BudgetDelayError
			if errors.As(err, &bd) {
				retry = bd.Wait
			}
			return &RenewalThrottledError{RetryAfter: retry}
		}
		return fmt.Errorf("psd2: waiting for rate budget: %w", err)
	}
	return nil
}

// attempt sends one HTTP request and classifies the answer.
func (c *Client) attempt(ctx context.Context, bc *Context, cl call, body []byte, token, signature string, n int) (res *result, err error) {
	reqID := newRequestID()
	start := time.Now()
	info := CallInfo{Method: cl.method, Path: cl.path, RequestID: reqID, Attempt: n, Signed: signature != ""}
	defer func() {
		info.Duration = time.Since(start)
		info.Err = err
		if res != nil {
			info.Status, info.ResponseID = res.status, res.responseID
		}
		c.report(ctx, info)
	}()

	u := c.base + cl.path
	if len(cl.query) > 0 {
		u += "?" + cl.query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	var wrote atomic.Bool // set from the transport's goroutine
	trace := &httptrace.ClientTrace{WroteRequest: func(w httptrace.WroteRequestInfo) { wrote.Store(w.Err == nil) }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), cl.method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("psd2: build request: %w", err)
	}
	noTransportRetry(req)
	h := req.Header
	h.Set("User-Agent", c.opt.UserAgent)
	h.Set("X-Bunq-Client-Request-Id", reqID)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Bunq-Language", c.opt.Language)
	h.Set("X-Bunq-Region", c.opt.Region)
	h.Set("X-Bunq-Geolocation", c.opt.Geolocation)
	if body != nil {
		h.Set("Content-Type", "application/json")
	}
	if token != "" {
		h.Set("X-Bunq-Client-Authentication", token)
	}
	if signature != "" {
		h.Set("X-Bunq-Client-Signature", signature)
	}

	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &TransportError{Method: cl.method, Path: cl.path, RequestID: reqID, Sent: wrote.Load(), Err: err}
	}
	defer resp.Body.Close()
	buf, err := c.readBody(resp, c.opt.MaxResponseBytes)
	raw := buf.Bytes()
	respID := resp.Header.Get("X-Bunq-Client-Response-Id")
	if err != nil {
		// The status line arrived, so the bank did receive the request.
		return nil, &TransportError{Method: cl.method, Path: cl.path, RequestID: reqID, Sent: true, Err: err}
	}
	if int64(len(raw)) > c.opt.MaxResponseBytes {
		return nil, &ResponseError{Method: cl.method, Path: cl.path, RequestID: reqID, ResponseID: respID,
			Err: fmt.Errorf("response body over %d bytes", c.opt.MaxResponseBytes)}
	}
	res = &result{status: resp.StatusCode, body: raw, buf: buf, requestID: reqID, responseID: respID}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := decodeError(resp.StatusCode, raw)
		e.Method, e.Path, e.RequestID, e.ResponseID = cl.method, cl.path, reqID, respID
		return res, e
	}
	if !cl.noVerify && bc != nil && bc.serverKey != nil {
		sig := resp.Header.Get("X-Bunq-Server-Signature")
		if verr := Verify(bc.serverKey, raw, sig); verr != nil {
			return res, &SignatureError{Method: cl.method, Path: cl.path, Status: resp.StatusCode, Missing: sig == "",
				RequestID: reqID, ResponseID: respID, Err: verr}
		}
	}
	return res, nil
}

// readBody reads at most limit+1 bytes of resp's body into a buffer from
// the client's pool (io.ReadAll would allocate and grow a new one per
// call). The caller hands it back with putBuffer once nothing refers to
// the bytes any more.
func (c *Client) readBody(resp *http.Response, limit int64) (*bytes.Buffer, error) {
	buf, _ := c.buffers.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	buf.Reset()
	if n := resp.ContentLength; n >= 0 && n <= limit {
		buf.Grow(int(n) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(io.LimitReader(resp.Body, limit+1))
	return buf, err
}

// putBuffer returns a body buffer to the pool; big ones are left to the
// collector so that one large answer does not stay in memory.
func (c *Client) putBuffer(buf *bytes.Buffer) {
	if buf != nil && buf.Cap() <= 1<<20 {
		c.buffers.Put(buf)
	}
}

func (c *Client) report(ctx context.Context, info CallInfo) {
	if c.opt.OnCall != nil {
		c.opt.OnCall(info)
	}
	if c.log.Enabled(ctx, slog.LevelDebug) {
		c.log.LogAttrs(ctx, slog.LevelDebug, "bunq call",
			slog.String("method", info.Method), slog.String("path", info.Path),
			slog.Int("status", info.Status), slog.String("request_id", info.RequestID),
			slog.String("response_id", info.ResponseID), slog.Int("attempt", info.Attempt),
			slog.Duration("duration", info.Duration), slog.Any("error", info.Err))
	}
}

// decodeError reads bunq's Error envelope leniently: any body gives an
// *APIError with the status, and descriptions when the envelope is there.
func decodeError(status int, body []byte) *APIError {
	e := &APIError{Kind: kindOf(status), Status: status}
	var env struct {
		Error []struct {
			Description           string `json:"error_description"`
			DescriptionTranslated string `json:"error_description_translated"`
		} `json:"Error"`
	}
	if json.Unmarshal(body, &env) == nil {
		for _, d := range env.Error {
			e.Descriptions = append(e.Descriptions, d.Description)
			e.Translated = append(e.Translated, d.DescriptionTranslated)
		}
	}
	return e
}

// newRequestID returns a random UUID v4.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	const hexdig = "0123456789abcdef"
	out := make([]byte, 36)
	j := 0
	for i, v := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out[j] = '-'
			j++
		}
		out[j], out[j+1] = hexdig[v>>4], hexdig[v&0x0f]
		j += 2
	}
	return string(out)
}

// noTransportRetry stops net/http from sending req again on its own after a
// reused connection drops: the transport re-sends requests it deems
// replayable (an idempotent method, or a body it can rewind through
// GetBody), which the bank then sees outside our rate budget and attempt
// count. A body that cannot be rewound makes no request replayable, so
// every retry goes through call's loop. An empty one is sent as no body.
func noTransportRetry(req *http.Request) {
	req.GetBody = nil
	if req.Body == nil || req.Body == http.NoBody {
		req.Body = emptyBody{}
		req.ContentLength = 0
		// Known empty: spares the transport probing the body (a goroutine
		// and a 200 ms timer per request); nothing is written for it.
		req.TransferEncoding = []string{"identity"}
	}
}

// emptyBody is an empty request body that is not http.NoBody (which the
// transport counts as replayable).
type emptyBody struct{}

func (emptyBody) Read([]byte) (int, error) { return 0, io.EOF }
func (emptyBody) Close() error             { return nil }

// WriteTo spares the transport's io.Copy its 32 KiB buffer (and a
// ReadFrom round through the connection) for a body that has nothing.
func (emptyBody) WriteTo(io.Writer) (int64, error) { return 0, nil }
