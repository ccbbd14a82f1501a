package api

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/bunqtpp/tpp"
)

// request is shaped like the API's create bodies: nested objects, money,
// optional pointers, arrays.
type request struct {
	AccountID    string     `json:"account_id"`
	Amount       *tpp.Money `json:"amount"`
	Counterparty *struct {
		IBAN string `json:"iban"`
		Name string `json:"name"`
	} `json:"counterparty"`
	Scopes    []string `json:"scopes"`
	Reference *string  `json:"reference"`
	Count     int      `json:"count"`
	Flag      bool     `json:"flag"`
}

func TestDecodeErrorsNameFieldAndType(t *testing.T) {
	for body, want := range map[string]string{
		`{"amount":"12.50"}`:                          `amount must be an object {amount, currency}, not a string`,
		`{"amount":{"amount":12.5,"currency":"EUR"}}`: `amount.amount must be a string, not a number`,
		`{"counterparty":["x"]}`:                      `counterparty must be an object {iban, name}, not an array`,
		`{"scopes":"accounts"}`:                       `scopes must be an array of strings, not a string`,
		`{"scopes":[1]}`:                              `scopes must be an array of strings, not an array holding a number`,
		`{"count":"3"}`:                               `count must be an integer, not a string`,
		`{"count":1.5}`:                               `count must be an integer, not a number`,
		`{"flag":"yes"}`:                              `flag must be true or false, not a string`,
		`{"reference":{}}`:                            `reference must be a string, not an object`,
		`[]`:                                          `request body must be an object`,
		`{"amount":{"amount":"1.00","currency":"EUR"},"x"`: `not valid JSON`,
		``:                         `request body is empty`,
		`{"amount":{"value":"1"}}`: `unknown field "value"`,
	} {
		err := decodeJSON(strings.NewReader(body), new(request))
		if tpp.ErrorCode(err) != tpp.EInvalid || !strings.Contains(tpp.ErrorMessage(err), want) {
			t.Errorf("%s: %v, want invalid_request saying %q", body, err, want)
		}
	}
}

// FuzzDecodeJSON: the request decoder refuses a body with a typed 4xx
// error and a message, or decodes a value that encodes and decodes back
// to itself (nothing is half-read or silently changed).
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{"account_id":"acc_x","amount":{"amount":"12.50","currency":"EUR"},"counterparty":{"iban":"NL91ABNA0417164300","name":"Anna"},"scopes":["accounts"],"reference":null,"count":3,"flag":true}`,
		`{"amount":"12.50"}`, `{"amount":{"amount":12.5}}`, `{"scopes":[1,2]}`, `{"count":1e400}`, `{"count":-0}`,
		`{"x":1}`, `{} {}`, `{`, ``, `null`, `"str"`, `{"reference":"\ud800"}`, `{"Amount":{"Amount":"1"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var v request
		err := decodeJSON(bytes.NewReader(body), &v)
		if err != nil {
			var e *tpp.Error
			if !asTPPError(err, &e) || (e.Code != tpp.EInvalid && e.Code != tpp.EBodyTooLarge) || e.Message == "" {
				t.Fatalf("decode %q: untyped or unexpected error %v", body, err)
			}
			if StatusOf(e.Code) >= 500 {
				t.Fatalf("decode %q: a server error for bad input", body)
			}
			return
		}
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", v, err)
		}
		var again request
		if err := decodeJSON(bytes.NewReader(out), &again); err != nil || !reflect.DeepEqual(v, again) {
			t.Fatalf("%q decoded to %+v, which does not round-trip (%s → %+v, %v)", body, v, out, again, err)
		}
	})
}

func asTPPError(err error, e **tpp.Error) bool {
	x, ok := err.(*tpp.Error)
	*e = x
	return ok
}
