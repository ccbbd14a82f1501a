package oauth

import (
	"context"
	"net/url"
	"strings"

	"github.com/bunqtpp/tpp"
)

// Payments is what the browser flow does for single payments
// (*pisp.Service). PrepareSingle runs as the user continues from our
// consent page to the bank, before a state is made; an error stops the
// trip with an error page (bunq shows every pending PSP draft on its page,
// so none may exist before its flow). AfterAuthorization runs after every
// trip back from the bank that this browser started, whatever its
// outcome, before the browser is sent on: pisp settles the PSP drafts
// bunq's page decided.
type Payments interface {
	PrepareSingle(ctx context.Context, c *tpp.Consent, requestID string) error
	AfterAuthorization(ctx context.Context, consentID, requestID string)
}

// AuthorizeURLs returns the builder of authorize URLs ({public}/connect/{id})
// of a TPP at publicURL, as Service.AuthorizeURL builds them. pisp takes it
// before the Service exists, since the Service takes pisp (Config.Payments).
func AuthorizeURLs(publicURL string) func(consentID string) string {
	base := strings.TrimRight(publicURL, "/")
	if pu, err := url.Parse(base); err == nil {
		base = pu.String()
	}
	return func(consentID string) string { return base + "/connect/" + url.PathEscape(consentID) }
}
