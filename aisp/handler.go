package aisp

import (
	"errors"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/api"
)

// Handler serves the account routes.
type Handler struct{ svc *Service }

// NewHandler returns the handler of svc.
func NewHandler(svc *Service) (*Handler, error) {
	if svc == nil {
		return nil, errors.New("aisp: handler needs a Service")
	}
	return &Handler{svc: svc}, nil
}

// Register mounts the routes on rg, the authenticated /v1 group. The
// consent parameter is named :id like the consents routes of package
// oauth: gin needs one name per path segment.
func (h *Handler) Register(rg *gin.RouterGroup) {
	rg.GET("/consents/:id/accounts", h.listAccounts)
	rg.GET("/consents/:id/accounts/:account_id", h.getAccount)
	rg.GET("/consents/:id/accounts/:account_id/transactions", h.listTransactions)
}

// request reads who asks and how: the client, the consent, whether the
// user is present (PSU-IP-Address) and whether to bypass the cache.
func request(c *gin.Context) (Request, error) {
	r := Request{ClientID: api.Client(c).ID, ConsentID: c.Param("id")}
	if vs, ok := c.Request.Header["Psu-Ip-Address"]; ok {
		v := ""
		if len(vs) > 0 {
			v = strings.TrimSpace(vs[0])
		}
		if _, err := netip.ParseAddr(v); err != nil || len(vs) != 1 {
			return Request{}, tpp.Errorf(tpp.EInvalid, "PSU-IP-Address must be the user's IPv4 or IPv6 address")
		}
		r.Attended = true
	}
	for _, v := range c.Request.Header.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(d), "no-cache") {
				r.Fresh = true
			}
		}
	}
	return r, nil
}

// setAccess writes the RateLimit headers when the budget is known.
func setAccess(c *gin.Context, a Access) {
	if !a.Known {
		return
	}
	c.Header("RateLimit-Limit", strconv.Itoa(a.Limit))
	c.Header("RateLimit-Remaining", strconv.Itoa(a.Remaining))
	// The client's API rate limit set a reset time; it does not belong
	// to the PSD2 window now in Limit and Remaining.
	c.Writer.Header().Del("RateLimit-Reset")
}

func (h *Handler) listAccounts(c *gin.Context) {
	r, err := request(c)
	if err != nil {
		api.Error(c, err)
		return
	}
	accs, access, err := h.svc.Accounts(c.Request.Context(), r)
	setAccess(c, access)
	if err != nil {
		api.Error(c, err)
		return
	}
	c.Header("Cache-Control", "private, no-store")
	api.JSON(c, http.StatusOK, gin.H{"data": accs})
}

func (h *Handler) getAccount(c *gin.Context) {
	r, err := request(c)
	if err != nil {
		api.Error(c, err)
		return
	}
	acc, access, err := h.svc.Account(c.Request.Context(), r, c.Param("account_id"))
	setAccess(c, access)
	if err != nil {
		api.Error(c, err)
		return
	}
	c.Header("Cache-Control", "private, no-store")
	api.JSON(c, http.StatusOK, acc)
}

func (h *Handler) listTransactions(c *gin.Context) {
	r, err := request(c)
	if err != nil {
		api.Error(c, err)
		return
	}
	for _, k := range []string{"from", "to", "limit", "cursor"} {
		if err := api.SingleQueryParam(c, k); err != nil {
			api.Error(c, err)
			return
		}
	}
	q, err := ParseTxQuery(c.Query("from"), c.Query("to"), c.Query("limit"), c.Query("cursor"))
	if err != nil {
		api.Error(c, err)
		return
	}
	page, access, err := h.svc.Transactions(c.Request.Context(), r, c.Param("account_id"), q)
	setAccess(c, access)
	if err != nil {
		api.Error(c, err)
		return
	}
	c.Header("Cache-Control", "private, no-store")
	api.JSON(c, http.StatusOK, page)
}
