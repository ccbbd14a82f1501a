package apidoc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"html/template"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// The docs page is built from the document alone, so it cannot disagree with
// /openapi.json. Everything it needs is inlined: no scripts, no fonts, no CDN.

type page struct {
	Title, Version string
	Intro          template.HTML
	Servers        []server
	Auth           template.HTML
	Sections       []section
	Errors         []errorRow
	ProblemFields  []field
	ProblemExample string
	Webhooks       webhookSection
	Schemas        []schemaDoc
	CSS            template.CSS
}

type server struct{ URL, Description string }

type section struct {
	Name, Anchor string
	Description  template.HTML
	Ops          []operation
}

type operation struct {
	ID, Method, Path, Summary string
	Description               template.HTML
	Auth                      bool
	Params                    []field
	Request                   *body
	Responses                 []response
	Errors                    []response
	Curl                      string // a working example, with ServerPlaceholder for the host
}

type body struct {
	ContentType string
	Schema      string // component name, when the body is one
	Fields      []field
	Examples    []example
}

type example struct{ Name, JSON string }

type response struct {
	Status      string
	StatusText  string
	Description string
	Headers     []field
	Body        *body
	Codes       []string
}

type field struct {
	Name        string
	Depth       int
	In          string
	Type        string
	TypeRef     string // anchor of a component schema, if Type names one
	Required    bool
	Nullable    bool
	Description template.HTML
	Constraints string
}

type errorRow struct {
	Code, Status, StatusText, Meaning string
}

type webhookSection struct {
	Description template.HTML
	Headers     []field
	Events      []webhookEvent
}

type webhookEvent struct {
	Type        string
	Description template.HTML
	Fields      []field
	Example     string
}

type schemaDoc struct {
	Name        string
	Description template.HTML
	Type        string
	Fields      []field
}

// methodOrder ranks methods so that each path reads create, read, change, delete.
var methodOrder = map[string]int{
	http.MethodPost: 0, http.MethodGet: 1, http.MethodPut: 2, http.MethodPatch: 3, http.MethodDelete: 4,
}

var pageTemplate = template.Must(template.New("docs.html.tmpl").Funcs(template.FuncMap{
	"lower": strings.ToLower,
}).ParseFS(files, "docs.html.tmpl"))

// renderDocs renders the HTML reference of doc.
func renderDocs(doc *openapi3.T) ([]byte, error) {
	p, err := buildPage(doc)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, p); err != nil {
		return nil, fmt.Errorf("apidoc: render docs: %w", err)
	}
	return buf.Bytes(), nil
}

func buildPage(doc *openapi3.T) (*page, error) {
	css, err := files.ReadFile("docs.css")
	if err != nil {
		return nil, fmt.Errorf("apidoc: read stylesheet: %w", err)
	}
	p := &page{
		Title:   doc.Info.Title,
		Version: doc.Info.Version,
		Intro:   renderText(doc.Info.Description),
		CSS:     template.CSS(css),
	}
	for _, s := range doc.Servers {
		p.Servers = append(p.Servers, server{URL: s.URL, Description: s.Description})
	}
	if ss := doc.Components.SecuritySchemes["bearerAuth"]; ss != nil && ss.Value != nil {
		p.Auth = renderText(ss.Value.Description)
	}

	codes, err := ErrorCodes(doc)
	if err != nil {
		return nil, err
	}
	for _, c := range codes {
		p.Errors = append(p.Errors, errorRow{
			Code: c.Code, Status: strconv.Itoa(c.Status), StatusText: http.StatusText(c.Status), Meaning: c.Meaning,
		})
	}
	if prob := doc.Components.Schemas["Problem"]; prob != nil {
		p.ProblemFields = flatten(prob, "", 0)
		p.ProblemExample = toJSON(exampleFor(prob, 0), prob)
	}

	if err := buildSections(doc, p); err != nil {
		return nil, err
	}
	if err := buildWebhooks(doc, p); err != nil {
		return nil, err
	}

	names := make([]string, 0, len(doc.Components.Schemas))
	for name := range doc.Components.Schemas {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		ref := doc.Components.Schemas[name]
		s := ref.Value
		p.Schemas = append(p.Schemas, schemaDoc{
			Name:        name,
			Description: renderText(s.Description),
			Type:        typeName(&openapi3.SchemaRef{Value: s}),
			Fields:      flatten(ref, "", 0),
		})
	}
	return p, nil
}

func buildSections(doc *openapi3.T, p *page) error {
	byTag := map[string][]operation{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if len(op.Tags) == 0 {
				return fmt.Errorf("apidoc: %s %s has no tag", method, path)
			}
			o := operation{
				ID:          op.OperationID,
				Method:      method,
				Path:        path,
				Summary:     op.Summary,
				Description: renderText(op.Description),
				Auth:        op.Security == nil || len(*op.Security) > 0,
			}
			if o.Auth && op.Security == nil && len(doc.Security) == 0 {
				o.Auth = false
			}
			params := slices.Concat(item.Parameters, op.Parameters)
			for _, pr := range params {
				o.Params = append(o.Params, paramField(pr.Value))
			}
			if rb := op.RequestBody; rb != nil && rb.Value != nil {
				o.Request = bodyOf(rb.Value.Content)
			}
			statuses := make([]string, 0, op.Responses.Len())
			for st := range op.Responses.Map() {
				statuses = append(statuses, st)
			}
			sort.Strings(statuses)
			only, err := operationCodes(op)
			if err != nil {
				return fmt.Errorf("apidoc: %s %s: %w", method, path, err)
			}
			for _, st := range statuses {
				r := responseOf(st, op.Responses.Value(st).Value)
				r.Codes = onlyCodes(r.Codes, only)
				if len(r.Codes) > 0 {
					o.Errors = append(o.Errors, r)
				} else {
					o.Responses = append(o.Responses, r)
				}
			}
			o.Curl = curlFor(o, params)
			byTag[op.Tags[0]] = append(byTag[op.Tags[0]], o)
		}
	}
	for _, tag := range doc.Tags {
		ops := byTag[tag.Name]
		delete(byTag, tag.Name)
		sort.Slice(ops, func(i, j int) bool {
			if ops[i].Path != ops[j].Path {
				return ops[i].Path < ops[j].Path
			}
			return methodOrder[ops[i].Method] < methodOrder[ops[j].Method]
		})
		p.Sections = append(p.Sections, section{
			Name: tag.Name, Anchor: "tag-" + slug(tag.Name), Description: renderText(tag.Description), Ops: ops,
		})
	}
	for tag := range byTag {
		return fmt.Errorf("apidoc: tag %q is used but not declared in tags", tag)
	}
	return nil
}

func buildWebhooks(doc *openapi3.T, p *page) error {
	w, err := WebhooksOf(doc)
	if err != nil {
		return err
	}
	p.Webhooks.Description = renderText(w.Description)
	for _, name := range w.Headers {
		h := doc.Components.Headers[name]
		if h == nil || h.Value == nil {
			return fmt.Errorf("apidoc: webhook header %q is not in components.headers", name)
		}
		p.Webhooks.Headers = append(p.Webhooks.Headers, headerField(name, h.Value))
	}
	types := make([]string, 0, len(w.Events))
	for t := range w.Events {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		name := strings.TrimPrefix(w.Events[t], "#/components/schemas/")
		s := doc.Components.Schemas[name]
		if s == nil {
			return fmt.Errorf("apidoc: webhook event %q refers to unknown schema %q", t, w.Events[t])
		}
		p.Webhooks.Events = append(p.Webhooks.Events, webhookEvent{
			Type:        t,
			Description: renderText(s.Value.Description),
			Fields:      flatten(s, "", 0),
			Example:     toJSON(exampleFor(s, 0), s),
		})
	}
	return nil
}

func paramField(pr *openapi3.Parameter) field {
	f := field{Name: pr.Name, In: pr.In, Required: pr.Required, Description: renderText(pr.Description)}
	if pr.Schema != nil {
		f.Type, f.TypeRef = typeOf(pr.Schema)
		f.Constraints = constraints(pr.Schema.Value)
	}
	return f
}

func headerField(name string, h *openapi3.Header) field {
	f := field{Name: name, Required: h.Required, Description: renderText(h.Description)}
	if h.Schema != nil {
		f.Type, f.TypeRef = typeOf(h.Schema)
		f.Constraints = constraints(h.Schema.Value)
	}
	return f
}

// operationCodes reads an operation's optional x-codes: the error codes it
// can produce. Shared error responses list every code of their status; an
// operation with x-codes shows only its own.
func operationCodes(op *openapi3.Operation) (map[string]bool, error) {
	if _, ok := op.Extensions["x-codes"]; !ok {
		return nil, nil
	}
	var codes []string
	if err := extension(op.Extensions, "x-codes", &codes); err != nil {
		return nil, err
	}
	only := map[string]bool{}
	for _, c := range codes {
		only[c] = true
	}
	return only, nil
}

// onlyCodes keeps the codes in only (all of them when only is nil).
func onlyCodes(codes []string, only map[string]bool) []string {
	if only == nil {
		return codes
	}
	var out []string
	for _, c := range codes {
		if only[c] {
			out = append(out, c)
		}
	}
	return out
}

func bodyOf(content openapi3.Content) *body {
	cts := make([]string, 0, len(content))
	for ct := range content {
		cts = append(cts, ct)
	}
	if len(cts) == 0 {
		return nil
	}
	sort.Strings(cts)
	mt := content[cts[0]]
	b := &body{ContentType: cts[0]}
	if mt.Schema == nil {
		return b
	}
	b.Schema = refName(mt.Schema.Ref)
	if mt.Schema.Value != nil && (mt.Schema.Value.Type.Is("object") || len(mt.Schema.Value.Properties) > 0 || len(mt.Schema.Value.AllOf) > 0) {
		b.Fields = flatten(mt.Schema, "", 0)
	}
	switch {
	case mt.Example != nil:
		b.Examples = []example{{JSON: toJSON(mt.Example, mt.Schema)}}
	case len(mt.Examples) > 0:
		names := make([]string, 0, len(mt.Examples))
		for n := range mt.Examples {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if ex := mt.Examples[n].Value; ex != nil {
				label := ex.Summary
				if label == "" {
					label = n
				}
				b.Examples = append(b.Examples, example{Name: label, JSON: toJSON(ex.Value, mt.Schema)})
			}
		}
	case strings.Contains(cts[0], "json") && len(b.Fields) > 0:
		b.Examples = []example{{JSON: toJSON(exampleFor(mt.Schema, 0), mt.Schema)}}
	}
	return b
}

func responseOf(status string, r *openapi3.Response) response {
	out := response{Status: status}
	if n, err := strconv.Atoi(status); err == nil {
		out.StatusText = http.StatusText(n)
	}
	if r.Description != nil {
		out.Description = *r.Description
	}
	names := make([]string, 0, len(r.Headers))
	for n := range r.Headers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		out.Headers = append(out.Headers, headerField(n, r.Headers[n].Value))
	}
	if mt := r.Content.Get("application/problem+json"); mt != nil && mt.Schema != nil {
		out.Codes = problemCodes(mt.Schema.Value)
		return out
	}
	out.Body = bodyOf(r.Content)
	return out
}

// problemCodes returns the error codes a problem response schema allows: the
// narrowest code enum found in it or its allOf parts.
func problemCodes(s *openapi3.Schema) []string {
	var best []any
	var visit func(s *openapi3.Schema, depth int)
	visit = func(s *openapi3.Schema, depth int) {
		if s == nil || depth > 4 {
			return
		}
		if c := s.Properties["code"]; c != nil && c.Value != nil && len(c.Value.Enum) > 0 {
			if best == nil || len(c.Value.Enum) < len(best) {
				best = c.Value.Enum
			}
		}
		for _, part := range s.AllOf {
			visit(part.Value, depth+1)
		}
	}
	visit(s, 0)
	out := make([]string, 0, len(best))
	for _, v := range best {
		out = append(out, fmt.Sprint(v))
	}
	return out
}

// ResponseCodes returns the error codes a problem response allows (none for
// other responses). Tests hold operations' x-codes to them.
func ResponseCodes(r *openapi3.Response) []string {
	if r == nil {
		return nil
	}
	mt := r.Content.Get("application/problem+json")
	if mt == nil || mt.Schema == nil {
		return nil
	}
	return problemCodes(mt.Schema.Value)
}

// ProblemCodesByStatus returns, per HTTP status, the error codes that the
// document's shared problem responses allow. Tests compare it with the
// service's own mapping.
func ProblemCodesByStatus(doc *openapi3.T) map[int][]string {
	out := map[int][]string{}
	for _, r := range doc.Components.Responses {
		if r.Value == nil {
			continue
		}
		mt := r.Value.Content.Get("application/problem+json")
		if mt == nil || mt.Schema == nil || mt.Schema.Value == nil {
			continue
		}
		status := problemStatus(mt.Schema.Value)
		if status == 0 {
			continue
		}
		out[status] = append(out[status], problemCodes(mt.Schema.Value)...)
	}
	for st := range out {
		sort.Strings(out[st])
	}
	return out
}

func problemStatus(s *openapi3.Schema) int {
	for _, part := range append([]*openapi3.SchemaRef{{Value: s}}, s.AllOf...) {
		if part.Value == nil {
			continue
		}
		if st := part.Value.Properties["status"]; st != nil && st.Value != nil && len(st.Value.Enum) == 1 {
			switch v := st.Value.Enum[0].(type) {
			case float64:
				return int(v)
			case int:
				return v
			}
		}
	}
	return 0
}

// flatten lists the fields of an object schema as table rows; nested objects
// and arrays of objects follow their parent with dotted names.
func flatten(ref *openapi3.SchemaRef, prefix string, depth int) []field {
	s := resolve(ref)
	if s == nil || depth > 6 {
		return nil
	}
	props, required := objectProps(s)
	var out []field
	for _, name := range propOrder(props, required) {
		pr := props[name]
		f := field{
			Name:     prefix + name,
			Depth:    depth,
			Required: slices.Contains(required, name),
			Nullable: pr.Value != nil && pr.Value.Nullable,
		}
		f.Type, f.TypeRef = typeOf(pr)
		if pr.Value != nil {
			desc := pr.Value.Description
			if desc == "" && pr.Ref != "" {
				if inner := resolve(pr); inner != nil {
					desc = inner.Description
				}
			}
			f.Description = renderText(desc)
			f.Constraints = constraints(resolve(pr))
		}
		out = append(out, f)
		inner := resolve(pr)
		switch {
		case inner == nil:
		case isObject(inner):
			out = append(out, flatten(pr, prefix+name+".", depth+1)...)
		case inner.Type.Is("array") && inner.Items != nil && isObject(resolve(inner.Items)):
			out = append(out, flatten(inner.Items, prefix+name+"[].", depth+1)...)
		}
	}
	return out
}

// resolve looks through a nullable single-allOf wrapper, the 3.0 way of
// saying "this $ref or null".
func resolve(ref *openapi3.SchemaRef) *openapi3.Schema {
	if ref == nil || ref.Value == nil {
		return nil
	}
	s := ref.Value
	if len(s.AllOf) == 1 && len(s.Properties) == 0 && s.Type == nil {
		return s.AllOf[0].Value
	}
	return s
}

func isObject(s *openapi3.Schema) bool {
	if s == nil || len(s.OneOf) > 0 {
		return false
	}
	p, _ := objectProps(s)
	return len(p) > 0
}

// objectProps merges the properties of s and its allOf parts.
func objectProps(s *openapi3.Schema) (openapi3.Schemas, []string) {
	props := openapi3.Schemas{}
	var required []string
	var visit func(s *openapi3.Schema, depth int)
	visit = func(s *openapi3.Schema, depth int) {
		if s == nil || depth > 4 {
			return
		}
		for _, part := range s.AllOf {
			visit(part.Value, depth+1)
		}
		for k, v := range s.Properties {
			if _, ok := props[k]; !ok || depth == 0 {
				props[k] = v
			}
		}
		for _, r := range s.Required {
			if !slices.Contains(required, r) {
				required = append(required, r)
			}
		}
	}
	visit(s, 0)
	return props, required
}

// propOrder lists required properties in the document's order (the required
// list is an array, so it keeps the author's order), then the others by name.
func propOrder(props openapi3.Schemas, required []string) []string {
	var out []string
	for _, r := range required {
		if _, ok := props[r]; ok {
			out = append(out, r)
		}
	}
	var rest []string
	for k := range props {
		if !slices.Contains(out, k) {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

func refName(ref string) string {
	return strings.TrimPrefix(ref, "#/components/schemas/")
}

// typeOf names the type of a schema for a table, and the schema anchor if it
// is a component.
func typeOf(ref *openapi3.SchemaRef) (string, string) {
	if ref == nil {
		return "", ""
	}
	if ref.Ref != "" {
		n := refName(ref.Ref)
		return n, "schema-" + n
	}
	s := ref.Value
	if s == nil {
		return "", ""
	}
	if len(s.AllOf) == 1 && s.AllOf[0].Ref != "" && len(s.Properties) == 0 {
		n := refName(s.AllOf[0].Ref)
		return n, "schema-" + n
	}
	return typeName(ref), ""
}

func typeName(ref *openapi3.SchemaRef) string {
	s := ref.Value
	switch {
	case s == nil:
		return ""
	case len(s.OneOf) > 0 && s.Type == nil:
		var parts []string
		for _, o := range s.OneOf {
			t, _ := typeOf(o)
			parts = append(parts, t)
		}
		return strings.Join(parts, " or ")
	case s.Type.Is("array"):
		if s.Items != nil {
			t, _ := typeOf(s.Items)
			return "array of " + t
		}
		return "array"
	case s.Type.Is("string") && s.Format != "":
		return "string (" + s.Format + ")"
	case s.Type != nil && len(s.Type.Slice()) > 0:
		return s.Type.Slice()[0]
	case len(s.Properties) > 0:
		return "object"
	}
	return "any"
}

// constraints summarises what a value must look like, in words.
func constraints(s *openapi3.Schema) string {
	if s == nil {
		return ""
	}
	var c []string
	if len(s.Enum) > 0 {
		vals := make([]string, 0, len(s.Enum))
		for _, v := range s.Enum {
			vals = append(vals, fmt.Sprint(v))
		}
		c = append(c, "one of: "+strings.Join(vals, ", "))
	}
	if s.MinLength > 0 || s.MaxLength != nil {
		switch {
		case s.MaxLength == nil:
			c = append(c, fmt.Sprintf("at least %d %s", s.MinLength, plural(s.MinLength, "character", "characters")))
		case s.MinLength > 0:
			c = append(c, fmt.Sprintf("%d–%d characters", s.MinLength, *s.MaxLength))
		default:
			c = append(c, fmt.Sprintf("at most %d characters", *s.MaxLength))
		}
	}
	if s.Min != nil || s.Max != nil {
		switch {
		case s.Min != nil && s.Max != nil:
			c = append(c, fmt.Sprintf("%g–%g", *s.Min, *s.Max))
		case s.Min != nil:
			c = append(c, fmt.Sprintf("≥ %g", *s.Min))
		default:
			c = append(c, fmt.Sprintf("≤ %g", *s.Max))
		}
	}
	if s.MinItems > 0 || s.MaxItems != nil {
		if s.MaxItems != nil {
			c = append(c, fmt.Sprintf("%d–%d items", s.MinItems, *s.MaxItems))
		} else {
			c = append(c, fmt.Sprintf("at least %d %s", s.MinItems, plural(s.MinItems, "item", "items")))
		}
	}
	if s.UniqueItems {
		c = append(c, "unique")
	}
	if s.Default != nil {
		c = append(c, fmt.Sprintf("default %v", s.Default))
	}
	if s.Pattern != "" {
		c = append(c, "pattern "+s.Pattern)
	}
	return strings.Join(c, "; ")
}

func plural(n uint64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// exampleFor builds an example value for a schema from the examples of its
// parts, so that every body in the docs shows one.
func exampleFor(ref *openapi3.SchemaRef, depth int) any {
	if ref == nil || ref.Value == nil || depth > 8 {
		return nil
	}
	s := ref.Value
	if s.Example != nil {
		return s.Example
	}
	switch {
	case len(s.OneOf) > 0:
		return exampleFor(s.OneOf[0], depth+1)
	case len(s.AllOf) == 1 && len(s.Properties) == 0:
		return exampleFor(s.AllOf[0], depth+1)
	case s.Type.Is("array"):
		if s.Items == nil {
			return []any{}
		}
		return []any{exampleFor(s.Items, depth+1)}
	case len(s.Enum) > 0:
		return s.Enum[0]
	case s.Type.Is("string"):
		if s.Format == "date-time" {
			return "2026-11-22T09:30:00Z"
		}
		return "string"
	case s.Type.Is("integer"):
		return 0
	case s.Type.Is("boolean"):
		return true
	}
	props, _ := objectProps(s)
	if len(props) == 0 {
		return map[string]any{}
	}
	out := make(map[string]any, len(props))
	for name, pr := range props {
		out[name] = exampleFor(pr, depth+1)
	}
	return out
}

// toJSON renders an example with its object keys in the schema's order
// (the loader keeps examples as maps, which would sort them), so that "id"
// comes first as in real responses.
func toJSON(v any, schema *openapi3.SchemaRef) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // the template escapes; \u003c would only confuse readers
	enc.SetIndent("", "  ")
	if err := enc.Encode(ordered(v, schema, 0)); err != nil {
		return fmt.Sprintf("(example not encodable: %v)", err)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

func marshalPlain(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// orderedObject is a JSON object that keeps its key order.
type orderedObject struct {
	keys []string
	vals map[string]any
}

func (o orderedObject) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		kb, err := marshalPlain(k)
		if err != nil {
			return nil, err
		}
		vb, err := marshalPlain(o.vals[k])
		if err != nil {
			return nil, err
		}
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(vb)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

func ordered(v any, ref *openapi3.SchemaRef, depth int) any {
	s := resolve(ref)
	if s == nil || depth > 10 {
		return v
	}
	switch x := v.(type) {
	case map[string]any:
		s = pickAlternative(s, x)
		props, required := objectProps(s)
		keys := make([]string, 0, len(x))
		for _, k := range propOrder(props, required) {
			if _, ok := x[k]; ok {
				keys = append(keys, k)
			}
		}
		var extra []string
		for k := range x {
			if _, ok := props[k]; !ok {
				extra = append(extra, k)
			}
		}
		sort.Strings(extra)
		keys = append(keys, extra...)
		vals := make(map[string]any, len(x))
		for k, val := range x {
			vals[k] = ordered(val, props[k], depth+1)
		}
		return orderedObject{keys: keys, vals: vals}
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = ordered(val, s.Items, depth+1)
		}
		return out
	}
	return v
}

// pickAlternative returns the oneOf alternative whose properties cover the
// object's keys, or s itself.
func pickAlternative(s *openapi3.Schema, obj map[string]any) *openapi3.Schema {
	for _, alt := range s.OneOf {
		a := resolve(alt)
		if a == nil {
			continue
		}
		props, _ := objectProps(a)
		if len(props) == 0 {
			continue
		}
		covers := true
		for k := range obj {
			if _, ok := props[k]; !ok {
				covers = false
				break
			}
		}
		if covers {
			return a
		}
	}
	return s
}

var (
	codeSpan = regexp.MustCompile("`([^`]+)`")
	nonSlug  = regexp.MustCompile(`[^a-z0-9]+`)
)

func slug(s string) string {
	return strings.Trim(nonSlug.ReplaceAllString(strings.ToLower(s), "-"), "-")
}

// renderText turns the document's plain descriptions into HTML: blank lines
// separate paragraphs, lines starting with "- " are list items, `x` is code.
// The text is escaped first, so descriptions cannot inject markup.
func renderText(s string) template.HTML {
	s = strings.TrimSpace(strings.ReplaceAll(s, "\r\n", "\n"))
	if s == "" {
		return ""
	}
	var out strings.Builder
	for _, block := range strings.Split(s, "\n\n") {
		var para, items []string
		flushPara := func() {
			if len(para) > 0 {
				out.WriteString("<p>" + inline(strings.Join(para, " ")) + "</p>")
				para = nil
			}
		}
		flushList := func() {
			if len(items) > 0 {
				out.WriteString("<ul>")
				for _, it := range items {
					out.WriteString("<li>" + inline(it) + "</li>")
				}
				out.WriteString("</ul>")
				items = nil
			}
		}
		for _, line := range strings.Split(block, "\n") {
			switch {
			case strings.HasPrefix(line, "- "):
				flushPara()
				items = append(items, strings.TrimSpace(line[2:]))
			case len(items) > 0 && strings.HasPrefix(line, "  "):
				items[len(items)-1] += " " + strings.TrimSpace(line)
			default:
				flushList()
				if t := strings.TrimSpace(line); t != "" {
					para = append(para, t)
				}
			}
		}
		flushPara()
		flushList()
	}
	return template.HTML(out.String())
}

func inline(s string) string {
	return codeSpan.ReplaceAllString(html.EscapeString(s), "<code>$1</code>")
}
