package psd2

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
)

// element is one item of a Response array: {"<Type>": {…}}.
type element struct {
	Type  string
	Value json.RawMessage
	// Decoded, when set, is Value decoded already (decodeEnvelopeInto).
	Decoded any
}

// envelope is a decoded success body.
type envelope struct {
	Elements   []element
	Pagination Pagination
}

type rawEnvelope struct {
	Response   []element `json:"Response"`
	Pagination *struct {
		FutureURL *string `json:"future_url"`
		NewerURL  *string `json:"newer_url"`
		OlderURL  *string `json:"older_url"`
	} `json:"Pagination"`
}

// UnmarshalJSON reads one Response item, an object of exactly one key,
// without the map a generic decode would build per item: json.Unmarshal
// has validated the body already, so a bracket count finds the value.
func (e *element) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) < 2 || b[0] != '{' {
		return fmt.Errorf("item is %s, want an object of one key", firstByteKind(b))
	}
	i := skipSpace(b, 1)
	if b[i] == '}' {
		return errors.New("item has no key, want 1")
	}
	keyEnd := endOfValue(b, i)
	key := b[i:keyEnd]
	i = skipSpace(b, keyEnd)
	i = skipSpace(b, i+1) // past ':'
	valueEnd := endOfValue(b, i)
	if skipSpace(b, valueEnd) != len(b)-1 {
		return errors.New("item has more than 1 key, want 1")
	}
	if t, ok := plainString(key); ok {
		e.Type = t
	} else if err := json.Unmarshal(key, &e.Type); err != nil {
		return err
	}
	// Copied: json.Unmarshal's input may not be kept.
	e.Value = append(json.RawMessage(nil), b[i:valueEnd]...)
	return nil
}

func firstByteKind(b []byte) string {
	if len(b) == 0 {
		return "empty"
	}
	return fmt.Sprintf("%q…", b[0])
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// endOfValue returns the index after the valid JSON value starting at b[i].
func endOfValue(b []byte, i int) int {
	depth, inString := 0, false
	for ; i < len(b); i++ {
		c := b[i]
		switch {
		case inString:
			if c == '\\' {
				i++
			} else if c == '"' {
				inString = false
				if depth == 0 {
					return i + 1
				}
			}
		case c == '"':
			inString = true
			// Jump to the next quote or backslash: most of a body is text.
			if j := bytes.IndexAny(b[i+1:], "\"\\"); j > 0 {
				i += j
			}
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
			if depth == 0 {
				return i + 1
			}
			if depth < 0 {
				return i
			}
		case depth == 0 && (c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			return i
		}
	}
	return i
}

func decodeEnvelope(body []byte) (*envelope, error) {
	var raw rawEnvelope
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("decode response: %w", err)
	}
	if raw.Response == nil {
		return nil, errors.New(`body has no "Response" array`)
	}
	return envelopeOf(raw)
}

func envelopeOf(raw rawEnvelope) (*envelope, error) {
	env := &envelope{Elements: raw.Response}
	if p := raw.Pagination; p != nil {
		env.Pagination = Pagination{Present: true}
		if p.OlderURL != nil {
			env.Pagination.OlderURL = *p.OlderURL
			env.Pagination.OlderID, env.Pagination.Count = idFromURL(*p.OlderURL, "older_id")
		}
		if p.NewerURL != nil {
			env.Pagination.NewerURL = *p.NewerURL
			env.Pagination.NewerID, _ = idFromURL(*p.NewerURL, "newer_id")
		}
		if p.FutureURL != nil {
			env.Pagination.FutureURL = *p.FutureURL
			env.Pagination.FutureID, _ = idFromURL(*p.FutureURL, "newer_id")
		}
	}
	return env, nil
}

// idFromURL reads the id param and the count of a Pagination URL. Ids and
// counts that are not positive read as absent: a page asked for with such
// an id would lose its position (Page.query drops it) and a listing would
// start over from the newest item.
func idFromURL(u, param string) (id int64, count int) {
	parsed, err := url.Parse(u)
	if err != nil {
		return 0, 0
	}
	q := parsed.Query()
	id, _ = strconv.ParseInt(q.Get(param), 10, 64)
	count, _ = strconv.Atoi(q.Get("count"))
	return max(id, 0), max(count, 0)
}

// first returns the first element of type typ.
func (e *envelope) first(typ string) (json.RawMessage, bool) {
	for _, el := range e.Elements {
		if el.Type == typ {
			return el.Value, true
		}
	}
	return nil, false
}

// id returns the id of the first "Id" element, as create calls answer.
func (e *envelope) id() (int64, error) {
	raw, ok := e.first("Id")
	if !ok {
		return 0, errors.New(`no "Id" element`)
	}
	var v struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, fmt.Errorf("decode Id: %w", err)
	}
	return v.ID, nil
}

// decodeAll decodes every element of type typ into T, skipping other types.
func decodeAll[T any](e *envelope, typ string) ([]T, error) {
	out := make([]T, 0, len(e.Elements))
	for _, el := range e.Elements {
		if el.Type != typ {
			continue
		}
		var v T
		if err := json.Unmarshal(el.Value, &v); err != nil {
			return nil, fmt.Errorf("decode %s: %w", typ, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// decodeOne decodes the first element of type typ.
func decodeOne[T any](e *envelope, typ string) (T, error) {
	var v T
	raw, ok := e.first(typ)
	if !ok {
		return v, fmt.Errorf("no %q element", typ)
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, fmt.Errorf("decode %s: %w", typ, err)
	}
	return v, nil
}

// Page selects a page of a listing: Count items (bank default 10, max 200),
// older than OlderID or newer than NewerID (at most one of them).
type Page struct {
	Count   int
	OlderID int64
	NewerID int64
}

func (p Page) query() url.Values {
	q := url.Values{}
	if p.Count > 0 {
		q.Set("count", strconv.Itoa(p.Count))
	}
	if p.OlderID > 0 {
		q.Set("older_id", strconv.FormatInt(p.OlderID, 10))
	}
	if p.NewerID > 0 {
		q.Set("newer_id", strconv.FormatInt(p.NewerID, 10))
	}
	return q
}

// Pagination is the parsed Pagination object of a listing. Items come newest
// first; OlderID is the smallest id of the page (0 when there is nothing
// older), NewerID the largest (0 when there is nothing newer), FutureID set
// when the page reaches the newest item (for polling).
type Pagination struct {
	Present   bool // the answer had a Pagination object
	Count     int
	OlderID   int64
	NewerID   int64
	FutureID  int64
	OlderURL  string
	NewerURL  string
	FutureURL string
}

// Older returns the page before (older than) this one, and false at the end.
func (p Pagination) Older() (Page, bool) {
	if p.OlderID == 0 {
		return Page{}, false
	}
	return Page{Count: p.Count, OlderID: p.OlderID}, true
}

// Newer returns the page after (newer than) this one, and false at the end.
func (p Pagination) Newer() (Page, bool) {
	if p.NewerID == 0 {
		return Page{}, false
	}
	return Page{Count: p.Count, NewerID: p.NewerID}, true
}

// Listing is one page of a listing with its Pagination.
type Listing[T any] struct {
	Items      []T
	Pagination Pagination
}

// decodeEnvelopeInto decodes body as decodeEnvelope does and, in the same
// pass, each element whose type into answers with a target (a pointer)
// into that target, kept as the element's Decoded. One json.Decoder pass
// scans the bytes twice where Unmarshal-then-Unmarshal-per-item scans them
// four times. Any shape it does not expect (odd keys, duplicates, trailing
// data, errors of any kind) goes to decodeEnvelope instead, so the outcome
// for such bodies is decodeEnvelope's exactly.
func decodeEnvelopeInto(body []byte, into func(typ string) any) (*envelope, error) {
	if env, ok := decodeEnvelopeFast(body, into); ok {
		return env, nil
	}
	return decodeEnvelope(body)
}

// decodeEnvelopeFast is decodeEnvelopeInto's one pass; false means "ask
// decodeEnvelope".
func decodeEnvelopeFast(body []byte, into func(typ string) any) (*envelope, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if !isDelim(dec, '{') {
		return nil, false
	}
	var raw rawEnvelope
	seenResponse, seenPagination := false, false
	for dec.More() {
		t, err := dec.Token()
		key, ok := t.(string)
		if err != nil || !ok {
			return nil, false
		}
		switch {
		case key == "Response" && !seenResponse:
			seenResponse = true
			if raw.Response, ok = decodeElements(dec, body, into); !ok {
				return nil, false
			}
		case key == "Pagination" && !seenPagination:
			seenPagination = true
			if dec.Decode(&raw.Pagination) != nil {
				return nil, false
			}
		case strings.EqualFold(key, "Response") || strings.EqualFold(key, "Pagination"):
			// Case-folded or repeated: Unmarshal's rules decide.
			return nil, false
		default:
			var skip json.RawMessage
			if dec.Decode(&skip) != nil {
				return nil, false
			}
		}
	}
	if !isDelim(dec, '}') {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false // trailing data
	}
	if raw.Response == nil {
		return nil, false
	}
	env, err := envelopeOf(raw)
	return env, err == nil
}

// decodeElements reads the Response array: items of exactly one key.
func decodeElements(dec *json.Decoder, body []byte, into func(string) any) ([]element, bool) {
	if !isDelim(dec, '[') {
		return nil, false
	}
	out := []element{}
	for dec.More() {
		if !isDelim(dec, '{') {
			return nil, false
		}
		t, err := dec.Token()
		typ, ok := t.(string)
		if err != nil || !ok {
			return nil, false
		}
		el := element{Type: typ}
		start := dec.InputOffset()
		target := into(typ)
		if target == nil {
			target = new(json.RawMessage)
		}
		if dec.Decode(target) != nil {
			return nil, false
		}
		end := dec.InputOffset()
		// Between the key and the value's end: blanks, ':', blanks, value.
		v := bytes.TrimRight(bytes.TrimLeft(body[start:end], " \t\r\n:"), " \t\r\n")
		el.Value = append(json.RawMessage(nil), v...)
		if _, isRaw := target.(*json.RawMessage); !isRaw {
			el.Decoded = target
		}
		if !isDelim(dec, '}') {
			return nil, false
		}
		out = append(out, el)
	}
	if !isDelim(dec, ']') {
		return nil, false
	}
	return out, true
}

func isDelim(dec *json.Decoder, d json.Delim) bool {
	t, err := dec.Token()
	return err == nil && t == d
}
