// Package tpp holds the domain of the bunq PSD2 third-party provider: the
// types every other package speaks (consents, fintech clients, payments,
// amounts, IBANs), the service and storage interfaces they implement, the
// application error type, and the clock.
//
// Packages named after a technology (sqlite, redis) adapt it to these
// interfaces; packages named after a PSD2 role (aisp, pisp, cbpii) hold that
// role's rules; psd2 is the bunq API client; sandbox is the emulated bank.
package tpp
