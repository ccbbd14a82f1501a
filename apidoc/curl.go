package apidoc

import (
	"encoding/json"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// ServerPlaceholder stands for this server's base URL in the rendered page;
// serveDocs puts the URL the reader used in its place.
const ServerPlaceholder = "https://tpp.example.com"

// curlFor is a working curl command for an operation: its method, a path
// with example values, the API key when it needs one, an Idempotency-Key
// when it takes one, and its request body's first example.
func curlFor(o operation, params openapi3.Parameters) string {
	path := o.Path
	var query []string
	idempotent := false
	for _, pr := range params {
		p := pr.Value
		if p == nil {
			continue
		}
		switch p.In {
		case "path":
			path = strings.ReplaceAll(path, "{"+p.Name+"}", examplePathValue(p))
		case "query":
			if p.Required {
				query = append(query, p.Name+"="+examplePathValue(p))
			}
		case "header":
			if strings.EqualFold(p.Name, "Idempotency-Key") {
				idempotent = true
			}
		}
	}
	url := ServerPlaceholder + path
	if len(query) > 0 {
		url += "?" + strings.Join(query, "&")
	}
	var b strings.Builder
	b.WriteString("curl -s")
	if o.Method != "GET" {
		b.WriteString(" -X " + o.Method)
	}
	b.WriteString(" '" + url + "'")
	if o.Auth {
		b.WriteString(" \\\n  -H \"Authorization: Bearer $TPP_API_KEY\"")
	}
	if idempotent {
		b.WriteString(" \\\n  -H \"Idempotency-Key: $(uuidgen)\"")
	}
	if o.Request != nil && len(o.Request.Examples) > 0 && strings.Contains(o.Request.ContentType, "json") {
		b.WriteString(" \\\n  -H 'Content-Type: " + o.Request.ContentType + "'")
		b.WriteString(" \\\n  -d '" + compactJSON(o.Request.Examples[0].JSON) + "'")
	}
	return b.String()
}

// examplePathValue is a parameter's example, or a placeholder naming it.
func examplePathValue(p *openapi3.Parameter) string {
	if p.Example != nil {
		if s, ok := p.Example.(string); ok {
			return s
		}
	}
	if p.Schema != nil && p.Schema.Value != nil && p.Schema.Value.Example != nil {
		if s, ok := p.Schema.Value.Example.(string); ok {
			return s
		}
	}
	return "{" + p.Name + "}"
}

// compactJSON puts a pretty example on one line for the shell; a quote
// inside it is closed and reopened around an escaped one.
func compactJSON(s string) string {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err == nil {
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if enc.Encode(v) == nil {
			s = strings.TrimSpace(b.String())
		}
	}
	return strings.ReplaceAll(s, "'", `'\''`)
}
