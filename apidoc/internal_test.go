package apidoc

import (
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

func TestRenderText(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", ""},
		{"One line.", "<p>One line.</p>"},
		{"Two\nlines.\n\nNext para.", "<p>Two lines.</p><p>Next para.</p>"},
		{"Use `GET /v1` now.", "<p>Use <code>GET /v1</code> now.</p>"},
		{"Steps:\n- first `a`\n  continued\n- second", "<p>Steps:</p><ul><li>first <code>a</code> continued</li><li>second</li></ul>"},
		{"<script>alert(1)</script> & `<b>`", "<p>&lt;script&gt;alert(1)&lt;/script&gt; &amp; <code>&lt;b&gt;</code></p>"},
	}
	for _, tc := range tests {
		if got := string(renderText(tc.in)); got != tc.want {
			t.Errorf("renderText(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

func TestEtagMatch(t *testing.T) {
	t.Parallel()
	tag := `"abc"`
	for header, want := range map[string]bool{
		``: false, `"abc"`: true, `W/"abc"`: true, `"x", "abc"`: true, `*`: true, `"abcd"`: false, `abc`: false,
	} {
		if got := etagMatch(header, tag); got != want {
			t.Errorf("etagMatch(%q) = %v, want %v", header, got, want)
		}
	}
}

func TestRenderDocsSections(t *testing.T) {
	t.Parallel()
	doc, err := Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	p, err := buildPage(doc)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range p.Sections {
		names = append(names, s.Name)
		if len(s.Ops) == 0 {
			t.Errorf("section %s has no operations", s.Name)
		}
		for _, op := range s.Ops {
			for _, r := range op.Responses {
				if r.Body != nil && strings.Contains(r.Body.ContentType, "json") && len(r.Body.Examples) == 0 && len(r.Body.Fields) > 0 {
					t.Errorf("%s %s: response %s shows no example", op.Method, op.Path, r.Status)
				}
			}
			if op.Request != nil && len(op.Request.Examples) == 0 {
				t.Errorf("%s %s: request body shows no example", op.Method, op.Path)
			}
			if len(op.Errors) == 0 && strings.HasPrefix(op.Path, "/v1/") {
				t.Errorf("%s %s: lists no errors", op.Method, op.Path)
			}
		}
	}
	if got := strings.Join(names, ","); got != "Consents,Accounts,Payments,Single payments,Funds confirmation,Operations" {
		t.Errorf("sections = %s", got)
	}
	// Sidebar order within a path: create, read, delete.
	c := p.Sections[0].Ops
	if c[0].ID != "createConsent" || c[1].ID != "listConsents" || c[2].ID != "getConsent" || c[3].ID != "revokeConsent" {
		t.Errorf("consent operations in order %s %s %s %s", c[0].ID, c[1].ID, c[2].ID, c[3].ID)
	}
}

// TestOperationCodesLimitTheErrorTables: an operation's x-codes keeps only
// its own codes in the error tables; without it every code shows.
func TestOperationCodesLimitTheErrorTables(t *testing.T) {
	op := &openapi3.Operation{Extensions: map[string]any{"x-codes": []any{"unauthorized", "consent_not_found"}}}
	only, err := operationCodes(op)
	if err != nil {
		t.Fatal(err)
	}
	got := onlyCodes([]string{"not_found", "consent_not_found", "payment_not_found"}, only)
	if len(got) != 1 || got[0] != "consent_not_found" {
		t.Errorf("codes kept: %v", got)
	}
	none, err := operationCodes(&openapi3.Operation{})
	if err != nil || len(onlyCodes([]string{"a", "b"}, none)) != 2 {
		t.Errorf("without x-codes: %v, %v", none, err)
	}
	if _, err := operationCodes(&openapi3.Operation{Extensions: map[string]any{"x-codes": "unauthorized"}}); err == nil {
		t.Error("a non-list x-codes was accepted")
	}
}
