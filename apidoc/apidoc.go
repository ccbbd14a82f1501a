// Package apidoc holds the OpenAPI 3 document of the fintech API, the
// contract the handlers follow and the end-to-end tests enforce, and serves
// it: GET /openapi.json (the document as JSON) and GET /docs (a
// self-contained HTML reference rendered on the server, usable offline).
//
// The document is written in YAML (openapi.yaml) because people edit it;
// Spec converts it to JSON, which is what is served and validated.
package apidoc

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/oasdiff/yaml"
)

//go:embed openapi.yaml docs.css docs.html.tmpl
var files embed.FS

// Spec returns the OpenAPI document as JSON. It panics only if the embedded
// document is not YAML at all, which the package's tests rule out.
func Spec() []byte {
	b, err := specJSON()
	if err != nil {
		panic(err)
	}
	return b
}

func specJSON() ([]byte, error) {
	src, err := files.ReadFile("openapi.yaml")
	if err != nil {
		return nil, fmt.Errorf("apidoc: read embedded document: %w", err)
	}
	j, err := yaml.YAMLToJSON(src)
	if err != nil {
		return nil, fmt.Errorf("apidoc: convert openapi.yaml to JSON: %w", err)
	}
	return j, nil
}

// Load parses the document and validates it (structure, references,
// examples against their schemas). Every call returns a fresh *openapi3.T, so
// callers may change it (the test validator replaces its servers).
func Load(ctx context.Context) (*openapi3.T, error) {
	j, err := specJSON()
	if err != nil {
		return nil, err
	}
	loader := openapi3.NewLoader()
	loader.Context = ctx
	doc, err := loader.LoadFromData(j)
	if err != nil {
		return nil, fmt.Errorf("apidoc: load document: %w", err)
	}
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("apidoc: invalid document: %w", err)
	}
	return doc, nil
}

// ErrorCode is one row of the document's error table (x-error-codes).
type ErrorCode struct {
	Code    string `json:"code"`
	Status  int    `json:"status"`
	Meaning string `json:"meaning"`
}

// ErrorCodes returns the error table of doc, in document order.
func ErrorCodes(doc *openapi3.T) ([]ErrorCode, error) {
	var out []ErrorCode
	if err := extension(doc.Extensions, "x-error-codes", &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Webhooks is the document's description of outgoing webhooks (x-webhooks;
// OpenAPI 3.0 has no webhooks section).
type Webhooks struct {
	Description string `json:"description"`
	// Headers name entries of components.headers.
	Headers []string `json:"headers"`
	// Events maps an event type to the $ref of its payload schema.
	Events map[string]string `json:"events"`
}

// WebhooksOf returns the webhook description of doc.
func WebhooksOf(doc *openapi3.T) (Webhooks, error) {
	var w Webhooks
	err := extension(doc.Extensions, "x-webhooks", &w)
	return w, err
}

// extension decodes the extension name into v via JSON, the form the loader
// keeps extensions in.
func extension(ext map[string]any, name string, v any) error {
	raw, ok := ext[name]
	if !ok {
		return fmt.Errorf("apidoc: document has no %s", name)
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return fmt.Errorf("apidoc: encode %s: %w", name, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("apidoc: decode %s: %w", name, err)
	}
	return nil
}
