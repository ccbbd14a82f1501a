package cbpii

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/bunqtpp/tpp/api"
)

// Handler serves the funds-confirmation route.
type Handler struct{ svc *Service }

// NewHandler returns the handler of svc.
func NewHandler(svc *Service) (*Handler, error) {
	if svc == nil {
		return nil, errors.New("cbpii: handler needs a Service")
	}
	return &Handler{svc: svc}, nil
}

// Register mounts the route on rg, the authenticated /v1 group (consent
// parameter :id, as in packages oauth and aisp).
func (h *Handler) Register(rg *gin.RouterGroup) {
	rg.POST("/consents/:id/funds-confirmations", h.confirm)
}

func (h *Handler) confirm(c *gin.Context) {
	// Answers about money are never stored by anyone on the way.
	c.Header("Cache-Control", "no-store")
	var in Request
	if err := api.DecodeJSON(c, &in); err != nil {
		api.Error(c, err)
		return
	}
	res, err := h.svc.Confirm(c.Request.Context(), api.Client(c).ID, c.Param("id"), in)
	if err != nil {
		api.Error(c, err)
		return
	}
	api.JSON(c, http.StatusOK, res)
}
