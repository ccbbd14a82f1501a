package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/logging"
)

const (
	ctxRequestID  = "tpp.request_id"
	ctxBaseLogger = "tpp.base_logger"
	ctxLogger     = "tpp.logger"
	ctxClient     = "tpp.client"
)

// HeaderRequestID carries the request id in both directions.
const HeaderRequestID = "X-Request-Id"

// MaxBodyBytes is the largest request body the API reads.
const MaxBodyBytes = 64 << 10

type requestIDKey struct{}

// RequestIDFromContext returns the API request id stored in ctx, so services
// can write it into audit records without knowing about gin.
func RequestIDFromContext(ctx context.Context) string {
	s, _ := ctx.Value(requestIDKey{}).(string)
	return s
}

// WithRequestID returns ctx carrying a request id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// validRequestID accepts client-supplied ids that are safe to log and echo.
func validRequestID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// RequestID keeps a valid incoming X-Request-Id or makes one, sets it on the
// response, and puts a logger carrying it on the request (made when first
// asked for: most requests log nothing at the configured level).
func RequestIDMiddleware(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader(HeaderRequestID)
		if !validRequestID(id) {
			id = tpp.NewID(tpp.PrefixRequest)
		}
		c.Set(ctxRequestID, id)
		c.Set(ctxBaseLogger, log)
		c.Request = c.Request.WithContext(WithRequestID(c.Request.Context(), id))
		c.Header(HeaderRequestID, id)
		c.Next()
	}
}

// APIPrefix starts every path of the fintech API.
const APIPrefix = "/v1"

// NoStoreAPI marks every answer under /v1 (resources, problems and 404s
// alike) Cache-Control: no-store: they hold account data, payment states and
// authorize URLs that no shared or browser cache may keep. Set before the
// handler runs, so an abort or a panic keeps it too.
func NoStoreAPI() gin.HandlerFunc {
	return func(c *gin.Context) {
		if p := c.Request.URL.Path; p == APIPrefix || strings.HasPrefix(p, APIPrefix+"/") {
			c.Header("Cache-Control", "no-store")
		}
		c.Next()
	}
}

// RequestID returns the request's id.
func RequestID(c *gin.Context) string {
	return c.GetString(ctxRequestID)
}

// Observer receives one call per finished request, for metrics. route is
// "METHOD /pattern", e.g. "GET /v1/consents/:id".
type Observer func(route string, status int, d time.Duration)

// AccessLog logs each request once it is done. The path is logged without
// its query when the query may carry secrets (OAuth callbacks do).
func AccessLog(observe Observer) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		d := time.Since(start)
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		status := c.Writer.Status()
		if observe != nil {
			method := c.Request.Method
			switch method {
			case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS":
			default:
				method = "OTHER" // clients choose the method: keep metric labels bounded
			}
			observe(method+" "+route, status, d)
		}
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelError
		}
		ctx := c.Request.Context()
		if !logEnabled(ctx, c, level) {
			return // spare the URL parsing and the logger
		}
		Logger(c).LogAttrs(ctx, level, "http request",
			slog.String("method", c.Request.Method),
			slog.String("route", route),
			slog.String("path", logging.RedactURL(c.Request.URL.RequestURI())),
			slog.Int("status", status),
			slog.Float64("duration_ms", float64(d.Microseconds())/1000),
			slog.String("client_id", clientIDForLog(c)),
		)
	}
}

func clientIDForLog(c *gin.Context) string {
	if cl := clientOf(c); cl != nil {
		return cl.ID
	}
	return ""
}

// Recover turns a panic into a 500 problem, logging the panic value.
func Recover() gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				Error(c, fmt.Errorf("panic: %v", r))
			}
		}()
		c.Next()
	}
}

// LimitBody caps request bodies at MaxBodyBytes.
func LimitBody() gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.ContentLength > MaxBodyBytes {
			Error(c, tpp.Errorf(tpp.EBodyTooLarge, "request body is larger than %d bytes", MaxBodyBytes))
			return
		}
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, MaxBodyBytes)
		c.Next()
	}
}

// DecodeJSON reads the request body into v strictly: unknown fields, trailing
// data, an empty body and bodies over the limit are errors with stable codes.
// A value of the wrong type is named by its field path and the expected
// type in words ("amount must be an object {amount, currency}, not a string").
func DecodeJSON(c *gin.Context, v any) error {
	return decodeJSON(c.Request.Body, v)
}

func decodeJSON(body io.Reader, v any) error {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var ute *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &mbe):
			return tpp.Errorf(tpp.EBodyTooLarge, "request body is larger than %d bytes", MaxBodyBytes)
		case errors.Is(err, io.EOF):
			return tpp.Errorf(tpp.EInvalid, "request body is empty; send a JSON object")
		case errors.As(err, &ute):
			return typeError(ute, reflect.TypeOf(v))
		case errors.As(err, &se):
			return tpp.Errorf(tpp.EInvalid, "request body is not valid JSON (at byte %d)", se.Offset)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return tpp.Errorf(tpp.EInvalid, "request body is not valid JSON: it ends too early")
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return tpp.Errorf(tpp.EInvalid, "unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
		default:
			return tpp.Errorf(tpp.EInvalid, "request body is not valid JSON")
		}
	}
	if dec.More() {
		return tpp.Errorf(tpp.EInvalid, "request body must hold exactly one JSON object")
	}
	return nil
}

// typeError says which field has the wrong type, what it must be and what
// it was, in words a developer reads without knowing Go.
func typeError(e *json.UnmarshalTypeError, root reflect.Type) error {
	got := e.Value
	switch got {
	case "number", "string", "object", "array", "bool":
	default:
		if strings.HasPrefix(got, "number") {
			got = "number"
		}
	}
	if got == "bool" {
		got = "true or false"
	} else {
		got = article(got) + " " + got
	}
	if e.Field == "" {
		return tpp.Errorf(tpp.EInvalid, "request body must be %s, not %s", describeType(e.Type), got)
	}
	// An array's item of the wrong type is reported with the array's
	// field name: name the array, not its item type.
	if f := fieldType(root, e.Field); f != nil && (f.Kind() == reflect.Slice || f.Kind() == reflect.Array) && f.Elem() == e.Type {
		return tpp.Errorf(tpp.EInvalid, "%s must be %s, not an array holding %s", e.Field, describeType(f), got)
	}
	return tpp.Errorf(tpp.EInvalid, "%s must be %s, not %s", e.Field, describeType(e.Type), got)
}

// fieldType follows a dotted JSON field path from t; nil if it leads nowhere.
func fieldType(t reflect.Type, path string) reflect.Type {
	for _, name := range strings.Split(path, ".") {
		for t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t == nil || t.Kind() != reflect.Struct {
			return nil
		}
		var next reflect.Type
		for i := range t.NumField() {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if tag == name || (tag == "" && strings.EqualFold(f.Name, name)) {
				next = f.Type
				break
			}
		}
		t = next
	}
	return t
}

// describeType names a Go type by its JSON shape: "a string", "an object
// {amount, currency}", "an array of strings".
func describeType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		if t == reflect.TypeOf(json.Number("")) {
			return "a number"
		}
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		elem := strings.TrimPrefix(strings.TrimPrefix(describeType(t.Elem()), "an "), "a ")
		if strings.HasPrefix(elem, "object") {
			return "an array of objects"
		}
		return "an array of " + elem + "s"
	case reflect.Map:
		return "an object"
	case reflect.Struct:
		var names []string
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if f.IsExported() && name != "-" {
				if name == "" {
					name = f.Name
				}
				names = append(names, name)
			}
		}
		if len(names) == 0 || len(names) > 4 {
			return "an object"
		}
		return "an object {" + strings.Join(names, ", ") + "}"
	}
	return "a JSON value"
}

func article(word string) string {
	if word != "" && strings.ContainsRune("aeiou", rune(word[0])) {
		return "an"
	}
	return "a"
}

// Page sizes of the lists of consents and payments (the API document's
// Limit parameter). Transactions have their own (aisp.DefaultTxLimit).
const (
	DefaultListLimit = 20
	MaxListLimit     = 100
)

// PageQuery reads a list's limit and cursor query parameters: each at most
// once and not empty, the limit a whole number from 1 to max (def when
// absent). Every list reads them through it, so they answer alike.
func PageQuery(c *gin.Context, def, max int) (tpp.PageRequest, error) {
	for _, k := range []string{"limit", "cursor"} {
		if err := SingleQueryParam(c, k); err != nil {
			return tpp.PageRequest{}, err
		}
	}
	limit, err := tpp.ParseLimit(c.Query("limit"), def, max)
	if err != nil {
		return tpp.PageRequest{}, err
	}
	cursor := c.Query("cursor")
	if len(cursor) > 512 {
		return tpp.PageRequest{}, tpp.Errorf(tpp.EInvalidCursor, "cursor is not one this API returned")
	}
	return tpp.PageRequest{Limit: limit, Cursor: cursor}, nil
}

// SingleQueryParam refuses a query parameter given twice or empty.
func SingleQueryParam(c *gin.Context, name string) error {
	if vs, ok := c.GetQueryArray(name); ok && (len(vs) != 1 || vs[0] == "") {
		return tpp.Errorf(tpp.EInvalid, "query parameter %s must be given once and not be empty", name)
	}
	return nil
}
