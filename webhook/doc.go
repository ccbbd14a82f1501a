// Package webhook sends events (consent.updated, payment.updated) to fintech
// clients, signed per Standard Webhooks (https://www.standardwebhooks.com),
// and delivers them at least once from the durable outbox.
//
// # Signing
//
// Every request is a POST of the event's stored JSON with Content-Type
// application/json, User-Agent bunq-tpp-webhooks/1 and three headers:
//
//   - webhook-id: the event id ("evt_..."), the same on every retry;
//   - webhook-timestamp: unix seconds of this attempt;
//   - webhook-signature: "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>",
//     one per secret in rotation, space-separated. The secret is
//     "whsec_<base64 key>" and the HMAC key is the decoded bytes.
//
// Sign and Verify are exported so fintechs and our tests share the scheme;
// Verify compares in constant time and rejects timestamps more than
// DefaultTolerance (5 min) away from now.
//
// # Delivery
//
// A Dispatcher drains a Store: it claims due deliveries under a lease, sends
// them, and records success (any 2xx) or failure (anything else, including
// 3xx, which is never followed, timeouts and connection errors) with the
// next attempt time, or gives up after the last one. Notify wakes it at once
// after new events are committed; otherwise it polls. On shutdown it stops
// claiming and lets attempts in flight finish within a grace period.
//
// Delivery is at least once. Leases keep two dispatchers (or replicas) from
// sending one event at the same time, but an attempt that outlives its lease
// or its process is sent again, with the same webhook-id: receivers must
// deduplicate on webhook-id (see ExampleVerify).
//
// Wiring with the SQLite outbox (one clock for both):
//
//	store := webhook.NewOutboxStore(sqlite.NewOutbox(db), sqlite.NewClientService(db, keyring))
//	d, err := webhook.NewDispatcher(store, webhook.Options{Clock: clock, Logger: log,
//		OnResult: metrics, DenyPrivateNetworks: production})
//	go d.Run(ctx) // and call d.Notify() after committing status changes
//
// # SSRF
//
// Fintechs choose their webhook URLs, so a hosted TPP must not let them aim
// it at internal services. Options.DenyPrivateNetworks refuses loopback,
// private, link-local (cloud metadata), CGNAT and other non-public
// addresses, checked on the resolved address at connect time so DNS tricks
// do not get around it, and ignores proxy settings. It is off by default
// because the demo and tests deliver to localhost; turn it on in production.
package webhook
