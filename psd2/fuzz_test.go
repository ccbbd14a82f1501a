package psd2

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"testing"
)

// FuzzDecodeEnvelope: any body is either refused with an error or decodes
// to elements that re-encode to the same envelope, and its Pagination
// never yields a next page whose query loses the position (which would
// make a listing start over from the newest item, for ever).
func FuzzDecodeEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"Response":[{"Id":{"id":42}}]}`,
		`{"Response":[{"MonetaryAccountBank":{"id":1,"balance":{"value":"12.50","currency":"EUR"}}},{"MonetaryAccountSavings":{"id":2}}],"Pagination":{"future_url":null,"newer_url":null,"older_url":"/v1/user/1/monetary-account?count=10&older_id=2"}}`,
		`{"Response":[{"Payment":{"id":9}}],"Pagination":{"future_url":"/v1/x?count=10&newer_id=9","newer_url":"/v1/x?count=10&newer_id=9","older_url":"/v1/x?count=10&older_id=-3"}}`,
		`{"Response":[]}`,
		`{"Response":[{"A":1,"B":2}]}`,
		`{"Response":null}`,
		`{"Error":[{"error_description":"x"}]}`,
		`[]`, ``, `{"Response":[{"Id":{"id":"1"}}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		env, err := decodeEnvelope(body)
		if err != nil {
			if env != nil {
				t.Fatal("an error with an envelope")
			}
			return
		}
		// Elements round-trip: re-encoding them gives the same elements.
		var raw struct {
			Response []map[string]json.RawMessage
		}
		raw.Response = make([]map[string]json.RawMessage, len(env.Elements))
		for i, el := range env.Elements {
			raw.Response[i] = map[string]json.RawMessage{el.Type: el.Value}
		}
		b, err := json.Marshal(raw)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		again, err := decodeEnvelope(b)
		if err != nil || len(again.Elements) != len(env.Elements) {
			t.Fatalf("re-decoded %s: %v", b, err)
		}
		for i := range env.Elements {
			if again.Elements[i].Type != env.Elements[i].Type {
				t.Fatalf("element %d: type %q became %q", i, env.Elements[i].Type, again.Elements[i].Type)
			}
		}
		// An id, when there is one, is the Id element's.
		if id, err := env.id(); err == nil {
			if _, ok := env.first("Id"); !ok {
				t.Fatalf("id %d without an Id element", id)
			}
		}
		p := env.Pagination
		if next, ok := p.Older(); ok {
			if q := next.query(); q.Get("older_id") != strconv.FormatInt(p.OlderID, 10) || p.OlderID <= 0 {
				t.Fatalf("older page %+v has query %v: the position is lost", next, q)
			}
		}
		if next, ok := p.Newer(); ok {
			if q := next.query(); q.Get("newer_id") != strconv.FormatInt(p.NewerID, 10) || p.NewerID <= 0 {
				t.Fatalf("newer page %+v has query %v: the position is lost", next, q)
			}
		}
		if p.Count < 0 || p.FutureID < 0 {
			t.Fatalf("pagination %+v: negative count or id", p)
		}
	})
}

// FuzzDecodeError: any error answer becomes an *APIError of the status's
// kind, matching its sentinel, with one translation per description.
func FuzzDecodeError(f *testing.F) {
	for _, c := range []struct {
		status int
		body   string
	}{
		{400, `{"Error":[{"error_description":"Amount is too high.","error_description_translated":"Bedrag te hoog."}]}`},
		{401, `{"Error":[{"error_description":"Insufficient authorisation."}]}`},
		{403, `{"Error":[{"error_description":"Insufficient authentication."},{"error_description":"x"}]}`},
		{404, `{"Error":[]}`}, {429, `<html>Too many</html>`}, {466, ``}, {491, `{"Error":null}`},
		{500, `{"Error":[{"error_description":7}]}`}, {503, `{"Error":{"error_description":"x"}}`}, {302, `{}`},
	} {
		f.Add(c.status, []byte(c.body))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := decodeError(status, body)
		if e == nil || e.Status != status || e.Kind != kindOf(status) {
			t.Fatalf("decodeError(%d) = %+v", status, e)
		}
		if len(e.Descriptions) != len(e.Translated) {
			t.Fatalf("%d descriptions, %d translations", len(e.Descriptions), len(e.Translated))
		}
		if s, ok := kindSentinels[e.Kind]; ok && !errors.Is(e, s) {
			t.Fatalf("%v does not match its sentinel %v", e, s)
		}
		var as *APIError
		if !errors.As(error(e), &as) || e.Error() == "" {
			t.Fatal("not an *APIError with a message")
		}
		if errors.Is(e, ErrSessionExpired) != e.InsufficientAuth() {
			t.Fatal("ErrSessionExpired disagrees with InsufficientAuth")
		}
		if e.Temporary() != (e.Kind == KindRateLimited || e.Kind == KindServer || e.Kind == KindMaintenance) {
			t.Fatalf("Temporary() wrong for kind %v", e.Kind)
		}
	})
}

// The fast path for amounts reads only what encoding/json reads the same.
func FuzzPlainAmount(f *testing.F) {
	for _, s := range []string{
		`{"value":"12.50","currency":"EUR"}`, ` { "currency" : "EUR" , "value" : "-1.00" } `,
		`{"value":"1","currency":"EUR","x":1}`, `{"Value":"1"}`, `{"value":1.5,"currency":"EUR"}`,
		`{"value":"a\"b","currency":"EUR"}`, `{"value":"1","value":"2"}`, `{"value":"1"}x`, `{}`, `{"value":"1",}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, cur, ok := plainAmount(b)
		if !ok {
			return
		}
		var want struct {
			Value    string `json:"value"`
			Currency string `json:"currency"`
		}
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("fast path read %q, encoding/json refuses it: %v", b, err)
		}
		if v != want.Value || cur != want.Currency {
			t.Fatalf("%q: fast path %q %q, encoding/json %q %q", b, v, cur, want.Value, want.Currency)
		}
	})
}

// FuzzDecodeEnvelopeInto: the one-pass decode gives what decodeEnvelope
// followed by decodeAccounts' per-item Unmarshal gives, for any body.
func FuzzDecodeEnvelopeInto(f *testing.F) {
	for _, s := range []string{
		`{"Response":[{"MonetaryAccountBank":{"id":1,"balance":{"value":"12.50","currency":"EUR"}}},{"MonetaryAccountSavings":{"id":2}}],"Pagination":{"future_url":null,"newer_url":null,"older_url":"/v1/user/1/monetary-account?count=10&older_id=2"}}`,
		` { "Response" : [ { "MonetaryAccountBank" : { "id" : 1 } } ] , "X" : [1] } `,
		`{"Response":[{"A":1,"B":2}]}`, `{"response":[{"A":{}}]}`, `{"Response":[{"A":{}}],"Response":[]}`,
		`{"Response":[{"MonetaryAccountBank":{"id":"1"}}]}`, `{"Response":[{"\u0041":{"id":1}}]} x`,
		`{"Response":null}`, `[]`, ``, `{"Response":[{"A":{"alias":[{"type":"IBAN"}]}}],"Pagination":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		want, wantErr := decodeEnvelope(body)
		got, gotErr := decodeEnvelopeInto(body, intoAccount)
		if (wantErr == nil) != (gotErr == nil) {
			t.Fatalf("errors differ: %v, one pass %v", wantErr, gotErr)
		}
		if wantErr != nil {
			if wantErr.Error() != gotErr.Error() {
				t.Fatalf("errors differ: %v, one pass %v", wantErr, gotErr)
			}
			return
		}
		if !reflect.DeepEqual(want.Pagination, got.Pagination) || len(want.Elements) != len(got.Elements) {
			t.Fatalf("envelopes differ: %+v, one pass %+v", want, got)
		}
		for i, el := range want.Elements {
			g := got.Elements[i]
			if el.Type != g.Type || !bytes.Equal(el.Value, g.Value) {
				t.Fatalf("element %d: %q %s, one pass %q %s", i, el.Type, el.Value, g.Type, g.Value)
			}
		}
		wantAcc, wantErr := decodeAccounts(want)
		gotAcc, gotErr := decodeAccounts(got)
		if fmt.Sprint(wantErr) != fmt.Sprint(gotErr) || !reflect.DeepEqual(wantAcc, gotAcc) {
			t.Fatalf("accounts differ: %+v %v, one pass %+v %v", wantAcc, wantErr, gotAcc, gotErr)
		}
	})
}
