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
	// Unavailable names the dependency behind an error that will pass
	// ("Redis", "the database"), or returns "". Such errors answer 503
	// service_unavailable with Retry-After instead of 500. Optional;
	// cmd/tpp combines redis.Unavailable and sqlite.Busy.
	Unavailable func(error) string
}

// NewEngine returns a gin engine with the API's base middleware: request ids,
// panic recovery, access logs and body limits. Services add their routes;
// unmatched routes and methods answer problem+json too. It leaves gin's
// process-wide mode alone: cmd/tpp's main sets release mode once.
func NewEngine(o Options) *gin.Engine {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.ContextWithFallback = true
	e.Use(RequestIDMiddleware(log), NoStoreAPI(), AccessLog(o.Observe), Recover(), LimitBody())
	if o.Unavailable != nil {
		e.Use(func(c *gin.Context) { c.Set(unavailableKey, o.Unavailable); c.Next() })
	}
	e.NoRoute(func(c *gin.Context) {
		Error(c, tpp.Errorf(tpp.ENotFound, "no such endpoint; see /docs"))
	})
	e.NoMethod(func(c *gin.Context) {
		Error(c, tpp.Errorf(tpp.EMethodNotAllowed, "this endpoint does not support %s", c.Request.Method))
	})
	return e
}

// Routes is a package's handler: it adds its routes to a group (the
// authenticated /v1 group, or the root for pages and callbacks).
type Routes interface{ Register(*gin.RouterGroup) }

// Mount returns a func that registers a handler on rg, straight from its
// constructor's (handler, error) result.
func Mount(rg *gin.RouterGroup) func(h Routes, err error) error {
	return func(h Routes, err error) error {
		if err != nil {
			return err
		}
		h.Register(rg)
		return nil
	}
}
