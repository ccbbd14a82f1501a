// Package psd2 is the client of the bunq public API as a PSD2 third-party
// provider uses it.
//
// One *Client serves many API contexts at once: the TPP's own (created from
// its QSeal certificate) and one per end user (created from that user's OAuth
// access token). A *Context holds an installation (client RSA key,
// installation token, bunq's server key), a device registration and a
// session; it is safe for concurrent use and renews its session on its own.
//
// Every call takes (ctx, *Context, …). The client signs request bodies where
// bunq requires it (or always, with Options.SignAll), verifies
// X-Bunq-Server-Signature on every successful answer, decodes bunq's Error
// envelope into *APIError, waits for a rate Budget before each call, retries
// idempotent reads on 429/5xx, and pages through listings.
//
// The wire protocol follows docs/bunq-api.md of the project (shared docs).
// This package shares no code with the emulated bank (package sandbox) on
// purpose: each is written from the reference, so a misreading in one is
// caught by the other.
package psd2
