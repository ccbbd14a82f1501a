package tpp

import "testing"

func TestRequestFingerprint(t *testing.T) {
	t.Parallel()
	a := RequestFingerprint("POST", "/v1/p", []byte(`{"amount":{"amount":"1.00","currency":"EUR"},"to":"x"}`))
	same := []string{
		`{"to":"x","amount":{"currency":"EUR","amount":"1.00"}}`,
		"{\n  \"amount\": {\"amount\": \"1.00\", \"currency\": \"EUR\"},\n  \"to\": \"x\"\n}\n",
	}
	for _, b := range same {
		if RequestFingerprint("POST", "/v1/p", []byte(b)) != a {
			t.Errorf("%s: fingerprint differs for the same request", b)
		}
	}
	diff := []struct{ method, path, body string }{
		{"POST", "/v1/p", `{"amount":{"amount":"1.0","currency":"EUR"},"to":"x"}`},
		{"POST", "/v1/p", `{"amount":{"amount":"1.00","currency":"EUR"},"to":"y"}`},
		{"PUT", "/v1/p", `{"amount":{"amount":"1.00","currency":"EUR"},"to":"x"}`},
		{"POST", "/v1/q", `{"amount":{"amount":"1.00","currency":"EUR"},"to":"x"}`},
	}
	for _, d := range diff {
		if RequestFingerprint(d.method, d.path, []byte(d.body)) == a {
			t.Errorf("%v: same fingerprint for another request", d)
		}
	}
	// Numbers keep their spelling (no float round trip): these differ.
	if RequestFingerprint("POST", "/", []byte(`{"n":1.10}`)) == RequestFingerprint("POST", "/", []byte(`{"n":1.1}`)) {
		t.Error("numbers passed through a float")
	}
	if RequestFingerprint("POST", "/", []byte(`{"n":10000000000000001}`)) == RequestFingerprint("POST", "/", []byte(`{"n":10000000000000000}`)) {
		t.Error("large numbers lost precision")
	}
	// Non-JSON bodies are hashed as they are.
	if RequestFingerprint("POST", "/", []byte("a=1")) == RequestFingerprint("POST", "/", []byte("a=2")) {
		t.Error("raw bodies collide")
	}
	if RequestFingerprint("POST", "/", nil) != RequestFingerprint("POST", "/", []byte("  ")) {
		t.Error("empty bodies differ")
	}
}

func TestValidIdempotencyKey(t *testing.T) {
	t.Parallel()
	for k, want := range map[string]bool{"abc-123": true, "": false, "a b": false, "ä": false, string(make([]byte, 256)): false} {
		if ValidIdempotencyKey(k) != want {
			t.Errorf("ValidIdempotencyKey(%q) != %v", k, want)
		}
	}
}
