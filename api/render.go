package api

import (
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"
)

// JSON writes v as the API's JSON answer with status. Every resource handler
// answers through it (not gin's c.JSON, which HTML-escapes "&", "<" and ">"
// into \u0026 and the like).
func JSON(c *gin.Context, status int, v any) {
	c.Render(status, jsonBody{v})
}

type jsonBody struct{ v any }

func (r jsonBody) Render(w http.ResponseWriter) error {
	r.WriteContentType(w)
	return jsonRender(w, r.v)
}

func (r jsonBody) WriteContentType(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
}

// jsonRender writes v as compact JSON without HTML escaping: the API's
// bodies are read by programs, and escaped "&" in return URLs only confuses.
func jsonRender(w http.ResponseWriter, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
