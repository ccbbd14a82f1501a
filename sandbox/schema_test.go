package sandbox_test

import (
	"encoding/json"
	"net/url"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/bunqtpp/tpp/internal/banktest"
	"github.com/bunqtpp/tpp/internal/testenv"
)

// TestResponsesMatchOpenAPI checks the objects the emulator returns against
// bunq's OpenAPI schemas (<Type>Listing for lists, <Type>Read for item
// GETs; the type-keyed wrappers on polymorphic endpoints), as §8.3 advises:
// the envelope by hand, the inner objects with VisitJSON.
func TestResponsesMatchOpenAPI(t *testing.T) {
	t.Parallel()
	specPath := testenv.BunqSpecFile(t, "openapi.json")
	doc, err := openapi3.NewLoader().LoadFromFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	schemas := doc.Components.Schemas
	check := func(what, schema string, v any) {
		t.Helper()
		ref := schemas[schema]
		if ref == nil {
			t.Fatalf("no schema %s", schema)
		}
		// Round-trip through JSON so numbers are float64, as VisitJSON expects.
		raw, _ := json.Marshal(v)
		var val any
		json.Unmarshal(raw, &val)
		if err := ref.Value.VisitJSON(val); err != nil {
			t.Errorf("%s does not match %s: %v", what, schema, err)
		}
	}
	// listed validates each element of a list against <Type>Listing, or the
	// whole element against wrapper when given.
	listed := func(c *tclient, path, wrapper string) []elem {
		t.Helper()
		r := c.get(path).must(t, 200)
		if _, ok := r.json(t)["Pagination"]; !ok {
			t.Errorf("%s: no Pagination", path)
		}
		es := r.elems(t)
		for _, e := range es {
			if wrapper != "" {
				check(path, wrapper, map[string]any{e.typ: e.obj})
			} else {
				check(path, e.typ+"Listing", e.obj)
			}
		}
		return es
	}
	read := func(c *tclient, path, wrapper string) elem {
		t.Helper()
		es := c.get(path).must(t, 200).elems(t)
		if len(es) != 1 {
			t.Fatalf("%s: %d elements", path, len(es))
		}
		if wrapper != "" {
			check(path, wrapper, map[string]any{es[0].typ: es[0].obj})
		} else {
			check(path, es[0].typ+"Read", es[0].obj)
		}
		return es[0]
	}

	env := banktest.Start(t)
	alice := seeded(t, env, 0)
	c := newClient(t, env)
	c.context(alice.APIKey)
	check("session user", "UserPersonRead", c.user)
	listed(c, "/v1/user", "UserListing")
	read(c, userPath(c.userID), "UserRead")
	read(c, "/v1/user-person/"+itoa(c.userID), "")
	for _, e := range listed(c, userPath(c.userID, "/monetary-account"), "MonetaryAccountListing") {
		id := itoa(num(e.obj["id"]))
		read(c, userPath(c.userID, "/monetary-account/", id), "MonetaryAccountRead")
		typed := map[string]string{"MonetaryAccountBank": "-bank", "MonetaryAccountSavings": "-savings", "MonetaryAccountJoint": "-joint"}[e.typ]
		listed(c, userPath(c.userID, "/monetary-account"+typed), "")
		read(c, userPath(c.userID, "/monetary-account"+typed+"/", id), "")
	}
	main := accountOf(t, alice, "MonetaryAccountBank")
	ma := userPath(c.userID, "/monetary-account/", itoa(main.ID))
	ps := listed(c, ma+"/payment?count=50", "")
	read(c, ma+"/payment/"+itoa(num(ps[0].obj["id"])), "")
	entry := map[string]any{"amount": map[string]string{"value": "1.00", "currency": "EUR"},
		"counterparty_alias": map[string]string{"type": "IBAN", "value": "NL91ABNA0417164300", "name": "Shop"}, "description": "x"}
	d := num(c.post(ma+"/draft-payment", map[string]any{"entries": []any{entry}, "number_of_required_accepts": 1}, true).must(t, 200).elems(t)[0].obj["id"])
	env.AcceptDraftPayment(t, d)
	listed(c, ma+"/draft-payment", "")
	read(c, ma+"/draft-payment/"+itoa(d), "")
	c.post(ma+"/request-inquiry", map[string]any{"amount_inquired": map[string]string{"value": "5", "currency": "EUR"},
		"counterparty_alias": map[string]string{"type": "EMAIL", "value": "sugardaddy@bunq.com"}, "description": "x"}, false).must(t, 200)
	listed(c, ma+"/request-inquiry", "")
	sp := num(c.post(ma+"/schedule-payment", map[string]any{"payment": entry, "schedule": map[string]any{
		"time_start": "2030-01-01 00:00:00", "recurrence_unit": "MONTHLY", "recurrence_size": 1}}, true).must(t, 200).elems(t)[0].obj["id"])
	listed(c, ma+"/schedule-payment", "")
	read(c, ma+"/schedule-payment/"+itoa(sp), "")
	listed(c, ma+"/schedule", "")

	psp, clientID, secret := oauthTPP(t, env, "https://tpp.example/cb")
	check("PSP session user", "UserPaymentServiceProviderRead", psp.user)
	read(psp, "/v1/user-payment-service-provider/"+itoa(psp.userID), "")
	ocs := listed(psp, userPath(psp.userID, "/oauth-client"), "")
	ocPath := userPath(psp.userID, "/oauth-client/", itoa(num(ocs[0].obj["id"])))
	read(psp, ocPath, "")
	urls := listed(psp, ocPath+"/callback-url", "")
	read(psp, ocPath+"/callback-url/"+itoa(num(urls[0].obj["id"])), "")
	pd := num(psp.post(userPath(psp.userID, "/payment-service-provider-draft-payment"), map[string]any{
		"sender_iban": main.IBAN, "counterparty_iban": "NL91ABNA0417164300", "counterparty_name": "Shop",
		"description": "x", "amount": map[string]string{"value": "1.00", "currency": "EUR"}}, false).must(t, 200).elems(t)[0].obj["id"])
	listed(psp, userPath(psp.userID, "/payment-service-provider-draft-payment"), "")
	read(psp, userPath(psp.userID, "/payment-service-provider-draft-payment/", itoa(pd)), "")
	psp.post(userPath(psp.userID, "/notification-filter-url"), map[string]any{"notification_filters": []map[string]string{
		{"category": "OAUTH", "notification_target": "https://tpp.example/hook"}}}, false).must(t, 200)
	listed(psp, userPath(psp.userID, "/notification-filter-url"), "NotificationFilterUrlListing")

	loc := env.Authorize(t, banktest.AuthorizeRequest{ClientID: clientID, RedirectURI: "https://tpp.example/cb", UserID: alice.ID})
	u, _ := url.Parse(loc)
	_, tok := exchange(t, env, false, url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")},
		"redirect_uri": {"https://tpp.example/cb"}, "client_id": {clientID}, "client_secret": {secret}})
	o := newClient(t, env)
	o.context(tok.AccessToken)
	check("OAuth session user", "UserApiKey", o.user)
	read(o, userPath(o.userID), "UserRead")
	listed(o, userPath(o.userID, "/monetary-account"), "MonetaryAccountListing")
}
