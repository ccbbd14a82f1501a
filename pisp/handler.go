package pisp

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/api"
)

// Handler exposes the Service as the payments API.
type Handler struct{ svc *Service }

// NewHandler returns the handler of svc.
func NewHandler(svc *Service) (*Handler, error) {
	if svc == nil {
		return nil, errors.New("pisp: handler needs a Service")
	}
	return &Handler{svc: svc}, nil
}

// Register mounts the payment routes on v1, the authenticated /v1 group
// (consent parameter :id, as in packages oauth and aisp).
func (h *Handler) Register(v1 *gin.RouterGroup) {
	v1.POST("/consents/:id/payments", h.createPayment)
	v1.GET("/consents/:id/payments", h.listPayments)
	v1.GET("/consents/:id/payments/:payment_id", h.getPayment)
	v1.DELETE("/consents/:id/payments/:payment_id", h.cancelPayment)
	v1.POST("/single-payments", h.createSinglePayment)
	v1.GET("/single-payments/:payment_id", h.getSinglePayment)
}

// readCreate reads what every create request needs: the Idempotency-Key,
// the raw body (for the fingerprint) and the decoded body.
func readCreate(c *gin.Context, into any) (key, fingerprint string, ok bool) {
	key = c.GetHeader("Idempotency-Key")
	if key == "" {
		api.Error(c, tpp.Errorf(tpp.EIdempotencyKeyRequired, "this request moves money: send an Idempotency-Key header (a UUID works well)"))
		return "", "", false
	}
	if !tpp.ValidIdempotencyKey(key) {
		api.Error(c, tpp.Errorf(tpp.EInvalid, "Idempotency-Key must be 1 to 255 visible ASCII characters"))
		return "", "", false
	}
	if c.Request.ContentLength > api.MaxBodyBytes {
		api.Error(c, tpp.Errorf(tpp.EBodyTooLarge, "request body is larger than %d bytes", api.MaxBodyBytes))
		return "", "", false
	}
	raw, err := io.ReadAll(io.LimitReader(c.Request.Body, api.MaxBodyBytes+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			api.Error(c, tpp.Errorf(tpp.EBodyTooLarge, "request body is larger than %d bytes", api.MaxBodyBytes))
		} else {
			api.Error(c, tpp.Errorf(tpp.EInvalid, "request body could not be read"))
		}
		return "", "", false
	}
	if len(raw) > api.MaxBodyBytes {
		api.Error(c, tpp.Errorf(tpp.EBodyTooLarge, "request body is larger than %d bytes", api.MaxBodyBytes))
		return "", "", false
	}
	c.Request.Body = io.NopCloser(bytes.NewReader(raw))
	if err := api.DecodeJSON(c, into); err != nil {
		api.Error(c, err)
		return "", "", false
	}
	return key, tpp.RequestFingerprint(c.Request.Method, c.Request.URL.Path, raw), true
}

func writeCreated(c *gin.Context, out *Created) {
	if out.Location != "" {
		c.Header("Location", out.Location)
	}
	if out.Replayed {
		c.Header("Idempotent-Replayed", "true")
	}
	if out.RetryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(int(out.RetryAfter.Seconds())))
	}
	c.Data(out.Status, "application/json; charset=utf-8", out.Body)
}

func (h *Handler) createPayment(c *gin.Context) {
	cl := api.Client(c)
	var req PaymentRequest
	key, fp, ok := readCreate(c, &req)
	if !ok {
		return
	}
	out, err := h.svc.CreatePayment(c.Request.Context(), CreatePaymentInput{
		Client: cl, ConsentID: c.Param("id"), Key: key, Fingerprint: fp, Request: req, RequestID: api.RequestID(c),
	})
	if err != nil {
		api.Error(c, err)
		return
	}
	writeCreated(c, out)
}

func (h *Handler) createSinglePayment(c *gin.Context) {
	cl := api.Client(c)
	var req SinglePaymentRequest
	key, fp, ok := readCreate(c, &req)
	if !ok {
		return
	}
	out, err := h.svc.CreateSinglePayment(c.Request.Context(), CreateSingleInput{
		Client: cl, Key: key, Fingerprint: fp, Request: req, RequestID: api.RequestID(c),
	})
	if err != nil {
		api.Error(c, err)
		return
	}
	writeCreated(c, out)
}

func (h *Handler) getPayment(c *gin.Context) {
	cl := api.Client(c)
	p, err := h.svc.Payment(c.Request.Context(), cl.ID, c.Param("id"), c.Param("payment_id"), api.RequestID(c))
	if err != nil {
		api.Error(c, err)
		return
	}
	api.JSON(c, http.StatusOK, PaymentView(p))
}

func (h *Handler) cancelPayment(c *gin.Context) {
	cl := api.Client(c)
	p, err := h.svc.CancelPayment(c.Request.Context(), cl.ID, c.Param("id"), c.Param("payment_id"), api.RequestID(c))
	if err != nil {
		api.Error(c, err)
		return
	}
	api.JSON(c, http.StatusOK, PaymentView(p))
}

func (h *Handler) listPayments(c *gin.Context) {
	cl := api.Client(c)
	pr, err := pageRequest(c)
	if err != nil {
		api.Error(c, err)
		return
	}
	page, err := h.svc.Payments(c.Request.Context(), cl.ID, c.Param("id"), pr)
	if err != nil {
		api.Error(c, err)
		return
	}
	out := PaymentListJSON{Data: make([]PaymentJSON, 0, len(page.Items))}
	for _, p := range page.Items {
		out.Data = append(out.Data, PaymentView(p))
	}
	if page.NextCursor != "" {
		out.NextCursor = &page.NextCursor
	}
	api.JSON(c, http.StatusOK, out)
}

func pageRequest(c *gin.Context) (tpp.PageRequest, error) {
	return api.PageQuery(c, api.DefaultListLimit, api.MaxListLimit)
}

func (h *Handler) getSinglePayment(c *gin.Context) {
	cl := api.Client(c)
	p, authURL, err := h.svc.SinglePayment(c.Request.Context(), cl.ID, c.Param("payment_id"), api.RequestID(c))
	if err != nil {
		api.Error(c, err)
		return
	}
	api.JSON(c, http.StatusOK, singleView(p, authURL))
}
