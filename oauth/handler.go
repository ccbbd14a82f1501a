package oauth

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/api"
	"github.com/bunqtpp/tpp/web"
)

// Handler exposes the consents API of the Service.
type Handler struct{ svc *Service }

// NewHandler returns the consents API of svc.
func NewHandler(svc *Service) (*Handler, error) {
	if svc == nil {
		return nil, errors.New("oauth: handler needs a Service")
	}
	return &Handler{svc: svc}, nil
}

// Register mounts /v1/consents on v1, the authenticated /v1 group.
func (h *Handler) Register(v1 *gin.RouterGroup) {
	v1.POST("/consents", h.createConsent)
	v1.GET("/consents", h.listConsents)
	v1.GET("/consents/:id", h.getConsent)
	v1.DELETE("/consents/:id", h.revokeConsent)
}

// Pages serves the browser flow of the Service: the consent pages and
// bunq's redirect back.
type Pages struct {
	svc   *Service
	pages *web.Renderer
}

// NewPages returns the browser flow of svc, rendered with pages.
func NewPages(svc *Service, pages *web.Renderer) (*Pages, error) {
	if svc == nil || pages == nil {
		return nil, errors.New("oauth: pages need a Service and a web.Renderer")
	}
	return &Pages{svc: svc, pages: pages}, nil
}

// Register mounts the consent pages under /connect, /oauth/callback and
// the pages' stylesheet under /static/ on rg, the engine's root group.
func (h *Pages) Register(rg *gin.RouterGroup) {
	rg.GET("/static/*file", gin.WrapH(web.Static()))
	rg.GET("/connect/:id", h.connectPage)
	rg.POST("/connect/:id/continue", h.connectContinue)
	rg.POST("/connect/:id/cancel", h.connectCancel)
	rg.GET(CallbackPath, h.callback)
}

// ---- JSON API

// ConsentJSON is a consent as the API shows it.
type ConsentJSON struct {
	ID           string    `json:"id"`
	Status       string    `json:"status"`
	Scopes       []string  `json:"scopes"`
	UserRef      string    `json:"user_ref"`
	ReturnURL    string    `json:"return_url"`
	AuthorizeURL *string   `json:"authorize_url,omitempty"`
	CreatedAt    string    `json:"created_at"`
	ExpiresAt    *string   `json:"expires_at,omitempty"`
	AuthorizedAt *string   `json:"authorized_at"`
	ReauthDueAt  *string   `json:"reauth_due_at"`
	BankUser     *BankUser `json:"bank_user"`
	RevokedAt    *string   `json:"revoked_at"`
	Error        *string   `json:"error"`
}

// BankUser is the bunq user who authorized a consent.
type BankUser struct {
	DisplayName string `json:"display_name"`
}

func timeJSON(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func optTime(t *time.Time) *string {
	if t == nil || t.IsZero() {
		return nil
	}
	s := timeJSON(*t)
	return &s
}

// ConsentView renders c for the API.
func (s *Service) ConsentView(c *tpp.Consent) ConsentJSON {
	j := ConsentJSON{
		ID: c.ID, Status: string(c.Status), UserRef: c.UserRef, ReturnURL: c.ReturnURL,
		CreatedAt: timeJSON(c.CreatedAt), AuthorizedAt: optTime(c.AuthorizedAt),
		ReauthDueAt: optTime(c.ReauthDueAt), RevokedAt: optTime(c.RevokedAt),
		Scopes: make([]string, 0, len(c.Scopes)),
	}
	for _, sc := range c.Scopes {
		j.Scopes = append(j.Scopes, string(sc))
	}
	switch c.Status {
	case tpp.ConsentPending:
		u := s.AuthorizeURL(c.ID)
		j.AuthorizeURL = &u
		j.ExpiresAt = optTime(&c.ExpiresAt)
	case tpp.ConsentReauthRequired:
		u := s.AuthorizeURL(c.ID)
		j.AuthorizeURL = &u
	}
	if c.BunqUserID != 0 && (c.Status == tpp.ConsentActive || c.Status == tpp.ConsentReauthRequired || c.Status == tpp.ConsentRevoked) {
		j.BankUser = &BankUser{DisplayName: c.BunqUserName}
	}
	if c.Status == tpp.ConsentRejected && c.ErrorCode != "" {
		e := c.ErrorCode
		j.Error = &e
	}
	return j
}

func (h *Handler) createConsent(c *gin.Context) {
	var in CreateConsentRequest
	if err := api.DecodeJSON(c, &in); err != nil {
		api.Error(c, err)
		return
	}
	cons, err := h.svc.CreateConsent(c.Request.Context(), api.Client(c), in, api.RequestID(c))
	if err != nil {
		api.Error(c, err)
		return
	}
	c.Header("Location", "/v1/consents/"+cons.ID)
	api.JSON(c, http.StatusCreated, h.svc.ConsentView(cons))
}

func (h *Handler) getConsent(c *gin.Context) {
	cons, err := h.svc.Consent(c.Request.Context(), api.Client(c).ID, c.Param("id"))
	if err != nil {
		api.Error(c, err)
		return
	}
	api.JSON(c, http.StatusOK, h.svc.ConsentView(cons))
}

func (h *Handler) listConsents(c *gin.Context) {
	p, err := api.PageQuery(c, api.DefaultListLimit, api.MaxListLimit)
	if err != nil {
		api.Error(c, err)
		return
	}
	page, err := h.svc.ListConsents(c.Request.Context(), api.Client(c).ID, c.Query("user_ref"), p)
	if err != nil {
		api.Error(c, err)
		return
	}
	out := struct {
		Data       []ConsentJSON `json:"data"`
		NextCursor *string       `json:"next_cursor"`
	}{Data: make([]ConsentJSON, 0, len(page.Items))}
	for _, it := range page.Items {
		out.Data = append(out.Data, h.svc.ConsentView(it))
	}
	if page.NextCursor != "" {
		out.NextCursor = &page.NextCursor
	}
	api.JSON(c, http.StatusOK, out)
}

func (h *Handler) revokeConsent(c *gin.Context) {
	cons, err := h.svc.Revoke(c.Request.Context(), api.Client(c).ID, c.Param("id"), api.RequestID(c))
	if err != nil {
		api.Error(c, err)
		return
	}
	api.JSON(c, http.StatusOK, h.svc.ConsentView(cons))
}

// ---- browser

// render writes a page. formTargets are the origins its forms may lead to
// besides our own (CSP form-action also covers the redirect after a POST).
func (h *Pages) render(c *gin.Context, status int, page string, data any, formTargets ...string) {
	if err := h.pages.Render(c.Writer, status, page, api.RequestID(c), data, formTargets...); err != nil {
		api.Logger(c).ErrorContext(c.Request.Context(), "rendering page failed", "page", page, "error", err)
		c.String(http.StatusInternalServerError, "Something went wrong on our side. Please try again.")
	}
	c.Abort()
}

func (h *Pages) pageError(c *gin.Context, err error) {
	var pe *PageError
	if !errors.As(err, &pe) {
		pe = h.svc.unavailable(err)
	}
	lvl := slog.LevelInfo
	if pe.Status >= 500 {
		lvl = slog.LevelError
	}
	api.Logger(c).Log(c.Request.Context(), lvl, "consent flow stopped", "status", pe.Status, "page", pe.Page.Heading, "error", pe.Err)
	h.render(c, pe.Status, web.PageError, pe.Page)
}

func (h *Pages) connectPage(c *gin.Context) {
	id := c.Param("id")
	v, err := h.svc.Connect(c.Request.Context(), id)
	if err != nil {
		h.pageError(c, err)
		return
	}
	// One CSRF cookie per browser; reuse it so two tabs keep working, but
	// only a value we issued: never one the browser (or a planted cookie)
	// chose.
	cookie, _ := c.Cookie(h.svc.cookies.csrfName())
	if !csrfCookieIssued(h.svc.csrfKey, cookie) {
		cookie = newCSRFCookie(h.svc.csrfKey)
	}
	http.SetCookie(c.Writer, h.svc.cookies.csrf(cookie))
	expires := ""
	if !v.Reauth {
		expires = v.Consent.ExpiresAt.UTC().Format("15:04 MST")
	}
	var pay *web.PaymentSummary
	if p := v.Payment; p != nil {
		pay = &web.PaymentSummary{
			Amount:       web.FormatMoney(p.AmountMinor, p.Currency),
			CreditorName: p.CounterpartyName, CreditorIBAN: web.FormatIBAN(p.CounterpartyIBAN),
			DebtorIBAN: web.FormatIBAN(p.DebtorIBAN), Description: p.Description,
		}
	}
	// Continue leads to bunq, Cancel back to the fintech's return URL.
	h.render(c, http.StatusOK, web.PageConnect, web.ConnectData{
		ClientName:  v.Client.Name,
		Scopes:      v.Scopes,
		Reauth:      v.Reauth,
		ContinueURL: "/connect/" + id + "/continue",
		CancelURL:   "/connect/" + id + "/cancel",
		CSRFToken:   csrfToken(h.svc.csrfKey, cookie, id),
		ExpiresAt:   expires,
		Payment:     pay,
	}, h.svc.exchange.AuthOrigin(), origin(v.Consent.ReturnURL))
}

var errCSRF = pageErr(http.StatusForbidden, "Please start again from the page",
	"We could not confirm that this request came from our page, so we stopped. Nothing has been shared.",
	"Go back, reload the page and press the button again. If you came from another app, start again there.", nil)

func (h *Pages) checkCSRF(c *gin.Context) bool {
	cookie, _ := c.Cookie(h.svc.cookies.csrfName())
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, 4<<10)
	if !csrfValid(h.svc.csrfKey, cookie, c.Param("id"), c.PostForm(csrfFormField)) {
		// The link back reports the consent unchanged; whoever posted
		// here knew its id already.
		h.pageError(c, h.svc.withReturn(c.Request.Context(), errCSRF, c.Param("id")))
		return false
	}
	return true
}

func (h *Pages) connectContinue(c *gin.Context) {
	if !h.checkCSRF(c) {
		return
	}
	to, cookie, err := h.svc.Begin(c.Request.Context(), c.Param("id"))
	if err != nil {
		h.pageError(c, err)
		return
	}
	http.SetCookie(c.Writer, cookie)
	c.Header("Cache-Control", "no-store")
	c.Header("Referrer-Policy", "no-referrer")
	c.Redirect(http.StatusSeeOther, to)
}

func (h *Pages) connectCancel(c *gin.Context) {
	if !h.checkCSRF(c) {
		return
	}
	to, err := h.svc.Cancel(c.Request.Context(), c.Param("id"), api.RequestID(c))
	if err != nil {
		h.pageError(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusSeeOther, to)
}

func (h *Pages) callback(c *gin.Context) {
	q := c.Request.URL.Query()
	res, err := h.svc.Callback(c.Request.Context(), CallbackRequest{
		State: q.Get("state"), Code: q.Get("code"), Error: q.Get("error"),
		ErrorDescription: q.Get("error_description"),
		Cookie: func(name string) string {
			v, _ := c.Cookie(name)
			return v
		},
		RequestID:    api.RequestID(c),
		RemoteIP:     c.RemoteIP(),
		ForwardedFor: c.GetHeader("X-Forwarded-For"),
		UserAgent:    c.Request.UserAgent(),
	})
	if err != nil {
		h.pageError(c, err)
		return
	}
	if res.ClearCookie != nil {
		http.SetCookie(c.Writer, res.ClearCookie)
	}
	c.Header("Cache-Control", "no-store")
	// The callback URL holds the code: never hand it on as a referrer.
	c.Header("Referrer-Policy", "no-referrer")
	c.Redirect(http.StatusSeeOther, res.Redirect)
}

// origin is the scheme://host of u, or "" when u has none.
func origin(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Scheme == "" || p.Host == "" {
		return ""
	}
	return p.Scheme + "://" + p.Host
}
