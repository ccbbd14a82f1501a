package api

import (
	"log/slog"

	"github.com/gin-gonic/gin"

	"github.com/bunqtpp/tpp"
)

// Options configure the engine.
type Options struct {
	Logger  *slog.Logger
	Observe Observer // optional, for request metrics
}

// NewEngine returns a gin engine with the API's base middleware: request ids,
// panic recovery, access logs and body limits. Services add their routes;
// unmatched routes and methods answer problem+json too.
func NewEngine(o Options) *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.ContextWithFallback = true
	e.Use(RequestIDMiddleware(log), NoStoreAPI(), AccessLog(o.Observe), Recover(), LimitBody())
	e.NoRoute(func(c *gin.Context) {
		Error(c, tpp.Errorf(tpp.ENotFound, "no such endpoint; see /docs"))
	})
	e.NoMethod(func(c *gin.Context) {
		Error(c, tpp.Errorf(tpp.EMethodNotAllowed, "this endpoint does not support %s", c.Request.Method))
	})
	return e
}
