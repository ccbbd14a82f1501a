// Package oauth is the end user's side of a consent: the consents API the
// fintech calls (Handler), the browser flow that sends the user to bunq and
// back (Pages), and the activation of the consent with the user's own bunq
// context. The bank's notification callbacks are package notify's; it
// re-checks revoked grants through consent.Gate.RecheckGrant.
//
// Flow:
//
//	POST /v1/consents                 → pending consent, authorize_url = {public}/connect/{id} (15 min)
//	GET  /connect/{id}                → consent page (who asks, what, that approval is at bunq)
//	POST /connect/{id}/continue       → 303 to bunq's /auth (x/oauth2 AuthCodeURL, state)
//	POST /connect/{id}/cancel         → 303 to return_url?consent_id=…&status=rejected&error=cancelled
//	GET  /oauth/callback?code&state   → code exchange, user context, consent active,
//	                                    303 to return_url?consent_id=…&status=active
//
// Security decisions:
//
//   - state is 256 random bits, stored in Redis by hash for 10 minutes, at
//     most 5 per consent (the oldest is dropped). It is bound to the browser
//     by a random nonce in an HttpOnly, SameSite=Lax cookie on path /oauth,
//     one cookie per flow; Redis keeps only the nonce's SHA-256 and deletes
//     the state only when the callback's cookie matches, so it works once
//     and a foreign attempt does not consume it. A callback with a missing,
//     reused, expired or foreign state shows an error page and changes
//     nothing.
//   - The code is bound to the flow: the state in bunq's token answer must
//     equal the state the callback consumed (redeem.go). A code from another
//     flow is refused and audited, and its token kept, sealed, for its own
//     flow; an answer without state is refused unless configured otherwise.
//     Failures of the token endpoint that may pass are retried, then the
//     user may try again; the consent stays pending.
//   - Cookies are Secure when the public URL is https. The one exception is
//     development over plain http (http://localhost, the emulated demo),
//     where a Secure cookie would not come back; New logs a warning when a
//     plain-http public URL is not a loopback address.
//   - The consent page's forms carry an HMAC token bound to a SameSite=Strict
//     cookie and to the consent id (CSRF). The cookie's value is one we
//     issued (HMAC-tagged), never one the browser chose; under https its
//     name has the __Host- prefix. Pages send a CSP without scripts
//     whose form-action allows only us and bunq's authorize origin.
//   - bunq's token endpoint takes its parameters in the query string with
//     an empty body: QueryTransport moves x/oauth2's form body into the
//     query. The token URL then holds the client secret and the code, so
//     exchange errors never carry the URL, and logs redact URLs.
//   - An OAUTH callback (package notify) is a hint only: each active
//     consent of the named user is re-checked with the bank (consent.Gate.RecheckGrant:
//     a fresh context from its token) and revoked only if the bank refuses.
package oauth
