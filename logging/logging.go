// Package logging builds the service's structured JSON logger. Its handler
// redacts secrets by attribute name and inside URLs, as a last line of defence:
// code should not log secrets in the first place, but a token that slips into
// an attribute called "token" or a URL's query still never reaches the log.
package logging

import (
	"io"
	"log/slog"
	"net/url"
	"strings"
)

// Redacted replaces a secret value in logs.
const Redacted = "[REDACTED]"

// secretKeys are attribute names (lower case, compared after removing '-'
// and '_') whose values are always secret. A bare "code" is not among them:
// it is the API's error code (invalid_iban), which operators need; an OAuth
// authorization code is logged, if ever, as "auth_code" or inside a URL's
// query, and both are redacted.
var secretKeys = map[string]bool{
	"token": true, "accesstoken": true, "sessiontoken": true, "installationtoken": true,
	"secret": true, "clientsecret": true, "apikey": true, "key": true, "privatekey": true,
	"password": true, "authorization": true, "authcode": true, "authorizationcode": true,
	"oauthcode": true, "signature": true,
	"xbunqclientauthentication": true, "xbunqclientsignature": true, "cookie": true, "setcookie": true,
	"masterkey": true, "webhooksecret": true, "tokenvalue": true,
}

// secretParams are URL query parameters whose values are secret.
var secretParams = map[string]bool{
	"code": true, "client_secret": true, "access_token": true, "state": true, "token": true,
	"secret": true, "api_key": true, "refresh_token": true,
}

// IsSecretKey reports whether an attribute or header name names a secret.
func IsSecretKey(name string) bool {
	n := strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(name))
	return secretKeys[n]
}

// RedactURL masks the values of secret query parameters in a URL, so a
// token-exchange URL (which carries the client secret and code) can be logged.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return Redacted
	}
	if u.User != nil {
		u.User = url.User(Redacted)
	}
	if u.RawQuery == "" {
		return u.String()
	}
	q := u.Query()
	changed := false
	for k := range q {
		if secretParams[strings.ToLower(k)] {
			q[k] = []string{Redacted}
			changed = true
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// Options configure New.
type Options struct {
	Level slog.Leveler // default Info
	Text  bool         // human-readable text instead of JSON (dev only)
}

// New returns a logger writing to w that redacts secrets.
func New(w io.Writer, o Options) *slog.Logger {
	ho := &slog.HandlerOptions{Level: o.Level, ReplaceAttr: replaceAttr}
	var h slog.Handler
	if o.Text {
		h = slog.NewTextHandler(w, ho)
	} else {
		h = slog.NewJSONHandler(w, ho)
	}
	return slog.New(h)
}

// Discard returns a logger that drops everything.
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func replaceAttr(groups []string, a slog.Attr) slog.Attr {
	if IsSecretKey(a.Key) {
		return slog.String(a.Key, Redacted)
	}
	if a.Value.Kind() == slog.KindString {
		s := a.Value.String()
		if strings.Contains(s, "://") && strings.Contains(s, "?") {
			return slog.String(a.Key, RedactURL(s))
		}
		if k := strings.ToLower(a.Key); k == "url" || k == "uri" || k == "path" || k == "query" || strings.HasSuffix(k, "_url") {
			if strings.Contains(s, "?") {
				return slog.String(a.Key, RedactURL(s))
			}
		}
	}
	return a
}
