// Package oauth is the end user's side of a consent: the consents API the
// fintech calls, the browser flow that sends the user to bunq and back,
// the activation of the consent with the user's own bunq context, and the
// bank's notification callbacks.
//
// Flow:
//
//	POST /v1/consents                 → pending consent, authorize_url = {public}/connect/{id} (15 min)
//	GET  /connect/{id}                → consent page (who asks, what, that approval is at bunq)
//	POST /connect/{id}/continue       → 303 to bunq's /auth (x/oauth2 AuthCodeURL, state)
//	POST /connect/{id}/cancel         → 303 to return_url?consent_id=…&status=rejected&error=cancelled
//	GET  /oauth/callback?code&state   → code exchange, user context, consent active,
//	                                    303 to return_url?consent_id=…&status=active
//	POST /bank/callbacks              → OAUTH (re-checked revocation), DRAFT_PAYMENT (hook)
//
// Security decisions:
//
//   - state is 256 random bits, stored in Redis by hash for 10 minutes and
//     taken with GETDEL, so it works once. It is bound to the browser by a
//     random nonce in an HttpOnly, SameSite=Lax cookie on path /oauth, one
//     cookie per flow; Redis keeps only the nonce's SHA-256. A callback
//     with a missing, reused, expired or foreign state shows an error page
//     and changes nothing. (A foreign attempt does consume the state.)
//   - Cookies are Secure when the public URL is https. The one exception is
//     development over plain http (http://localhost, the emulated demo),
//     where a Secure cookie would not come back; New logs a warning when a
//     plain-http public URL is not a loopback address.
//   - The consent page's forms carry an HMAC token bound to a SameSite=Strict
//     cookie and to the consent id (CSRF). Pages send a CSP without scripts
//     whose form-action allows only us and bunq's authorize origin.
//   - bunq's token endpoint takes its parameters in the query string with
//     an empty body: QueryTransport moves x/oauth2's form body into the
//     query. The token URL then holds the client secret and the code, so
//     exchange errors never carry the URL, and logs redact URLs.
//   - An OAUTH callback is a hint only: each active consent of the named
//     user is re-checked with the bank (a fresh context from its token) and
//     revoked only if the bank refuses. With Config.CallbackKey, callbacks
//     must also carry the bank's signature.
package oauth
