package sandbox

// bunqIBAN reports whether iban (electronic form, see canonicalIBAN) is one
// bunq issues: Dutch, bank code BUNQ. A PSP draft payment's sender must be
// one (bunq validates it at creation; ../shared/docs/bunq-api.md §12.5).
func bunqIBAN(iban string) bool {
	return len(iban) == 18 && iban[:2] == "NL" && iban[4:8] == "BUNQ"
}
