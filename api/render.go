package api

import (
	"encoding/json"
	"net/http"
)

// jsonRender writes v as compact JSON without HTML escaping: the API's
// bodies are read by programs, and escaped "&" in return URLs only confuses.
func jsonRender(w http.ResponseWriter, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
