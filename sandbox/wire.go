package sandbox

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// obj is a JSON object under construction.
type obj = map[string]any

// reply is what an API handler answers: a status and a JSON body.
type reply struct {
	status int
	body   any
}

// item is one element of a Response array: {"<Type>": {...}}.
func item(typ string, v any) obj { return obj{typ: v} }

// ok answers {"Response": [elems...]}.
func ok(elems ...obj) reply {
	if elems == nil {
		elems = []obj{}
	}
	return reply{200, obj{"Response": elems}}
}

// idReply answers {"Response": [{"Id": {"id": N}}]}.
func idReply(id int64) reply { return ok(item("Id", obj{"id": id})) }

// list answers a listing with its Pagination object.
func list(elems []obj, pg obj) reply {
	if elems == nil {
		elems = []obj{}
	}
	return reply{200, obj{"Response": elems, "Pagination": pg}}
}

// noPagination is the Pagination object of a listing that is never paged.
func noPagination() obj { return obj{"future_url": nil, "newer_url": nil, "older_url": nil} }

// unpaged answers a listing that is never paged.
func unpaged(elems []obj) reply { return list(elems, noPagination()) }

// listing answers one page of ids (any order, see page), each rendered as
// its Response element by elem.
func (c *call) listing(ids []int64, elem func(id int64) obj) reply {
	sel, pg, rerr := page(c.r.URL.Path, c.r.URL.Query(), ids)
	if rerr != nil {
		return *rerr
	}
	elems := make([]obj, 0, len(sel))
	for _, id := range sel {
		elems = append(elems, elem(id))
	}
	return list(elems, pg)
}

// idsWhere lists the keys of m whose values keep accepts, in no order.
func idsWhere[T any](m map[int64]T, keep func(T) bool) []int64 {
	var ids []int64
	for id, v := range m {
		if keep(v) {
			ids = append(ids, id)
		}
	}
	return ids
}

// bunqErr answers bunq's error envelope.
func bunqErr(status int, text string) reply {
	return reply{status, obj{"Error": []obj{{
		"error_description":            text,
		"error_description_translated": text,
	}}}}
}

// bunq's error texts (docs/bunq-api.md §6.3) and our own in the same style.
const (
	txtNoAuth         = "Insufficient authorisation."
	txtBadCredentials = "User credentials are incorrect. Incorrect API key or IP address."
	txtSigRequired    = "For this operation a request signature is required. Check the urls for more information."
	txtSigInvalid     = "The request signature is invalid."
	txtNeedSession    = "This call needs a session token in X-Bunq-Client-Authentication, not an installation token."
	txtNeedInst       = "This call needs an installation token in X-Bunq-Client-Authentication, not a session token."
	txtNoFunds        = "The balance of the monetary account is insufficient for this payment."
)

func badRequest(text string) reply { return bunqErr(400, text) }
func notFound(what string) reply   { return bunqErr(404, what+" not found.") }

// ts formats a bunq timestamp: UTC "YYYY-MM-DD hh:mm:ss.ffffff".
func ts(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000000") }

// amount renders minor units as {"value": "12.50", "currency": "EUR"}.
func amount(minor int64, currency string) obj {
	if currency == "" {
		currency = "EUR"
	}
	return obj{"value": formatCents(minor), "currency": currency}
}

// decimal is a JSON amount value. bunq sends strings; some clients send a
// bare number. Either way it is kept as text and never becomes a float.
type decimal string

func (d *decimal) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" {
		*d = ""
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		*d = decimal(strings.TrimSpace(str))
		return nil
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c == '.' || c == '-') {
			return errors.New("amount value is not a decimal")
		}
	}
	*d = decimal(s)
	return nil
}

// amountIn is an amount in a request body.
type amountIn struct {
	Value    decimal `json:"value"`
	Currency string  `json:"currency"`
}

// parse returns the positive amount in cents, or a bunq-style 400.
func (a amountIn) parse(field string) (int64, *reply) {
	if a.Value == "" {
		r := badRequest("The field " + field + " is required.")
		return 0, &r
	}
	if a.Currency != "" && a.Currency != "EUR" {
		r := badRequest("Currency " + a.Currency + " is not supported for this monetary account.")
		return 0, &r
	}
	v, err := parseCents(string(a.Value))
	if err != nil {
		r := badRequest("The amount in " + field + " is not a valid positive amount.")
		return 0, &r
	}
	return v, nil
}

// decode reads a JSON body leniently: unknown fields are ignored and an
// empty body is an empty object.
func decode(body []byte, v any) *reply {
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		r := badRequest("Error while parsing JSON: the request body is not valid.")
		return &r
	}
	return nil
}

// signBody returns the base64 PKCS#1 v1.5 SHA-256 signature of body.
func signBody(key *rsa.PrivateKey, body []byte) string {
	sum := sha256.Sum256(body)
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
	if err != nil {
		return "" // cannot happen with a valid key; an empty signature fails closed
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// verifyBody checks a client signature over the raw body bytes. The base64
// is decoded leniently: whitespace is dropped and padding is optional, in
// the standard or URL alphabet.
func verifyBody(pub *rsa.PublicKey, body []byte, sig string) bool {
	clean := strings.Map(func(r rune) rune {
		if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
			return -1
		}
		return r
	}, sig)
	sum := sha256.Sum256(body)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		raw, err := enc.DecodeString(clean)
		if err != nil {
			continue
		}
		if rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], raw) == nil {
			return true
		}
	}
	return false
}

// page cuts a newest-first page out of ids (any order) following bunq's
// count / older_id / newer_id semantics (docs/bunq-api.md §6.1) and builds
// the Pagination object. It returns the chosen ids, newest first.
func page(path string, q url.Values, ids []int64) ([]int64, obj, *reply) {
	count := 10
	if s := q.Get("count"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 200 {
			r := badRequest("The value of count must be a number between 1 and 200.")
			return nil, nil, &r
		}
		count = n
	}
	parseID := func(name string) (int64, bool, *reply) {
		s := q.Get(name)
		if s == "" {
			return 0, false, nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			r := badRequest("The value of " + name + " must be a number.")
			return 0, false, &r
		}
		return n, true, nil
	}
	older, hasOlder, rerr := parseID("older_id")
	if rerr != nil {
		return nil, nil, rerr
	}
	newer, hasNewer, rerr := parseID("newer_id")
	if rerr != nil {
		return nil, nil, rerr
	}
	sorted := append([]int64(nil), ids...)
	sortByID(sorted, func(x int64) int64 { return -x }) // newest first
	var sel []int64
	switch {
	case hasNewer:
		// the count items immediately above newer, still newest first
		var above []int64
		for i := len(sorted) - 1; i >= 0 && len(above) < count; i-- {
			if sorted[i] > newer {
				above = append(above, sorted[i])
			}
		}
		for i := len(above) - 1; i >= 0; i-- {
			sel = append(sel, above[i])
		}
	default:
		for _, id := range sorted {
			if hasOlder && id >= older {
				continue
			}
			if len(sel) == count {
				break
			}
			sel = append(sel, id)
		}
	}
	link := func(name string, id int64) string {
		return path + "?count=" + strconv.Itoa(count) + "&" + name + "=" + strconv.FormatInt(id, 10)
	}
	pg := noPagination()
	if len(sel) == 0 {
		if hasNewer {
			pg["future_url"] = link("newer_id", newer)
		}
		return sel, pg, nil
	}
	hi, lo := sel[0], sel[len(sel)-1]
	if len(sorted) > 0 && sorted[len(sorted)-1] < lo {
		pg["older_url"] = link("older_id", lo)
	}
	if sorted[0] > hi {
		pg["newer_url"] = link("newer_id", hi)
	} else {
		pg["future_url"] = link("newer_id", hi)
	}
	return sel, pg, nil
}
