package tpp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net"
	"net/url"
	"strings"
	"time"
)

// ClientStatus tells whether a fintech client may call the API.
type ClientStatus string

// Client statuses. Revocation is final: a revoked client's keys fail.
const (
	ClientActive  ClientStatus = "active"
	ClientRevoked ClientStatus = "revoked"
)

// FintechClient is a business that uses the API: it creates consents for its
// users and receives webhooks.
type FintechClient struct {
	ID         string
	Name       string
	ReturnURLs []string // a consent's return_url must equal one of these exactly
	WebhookURL string   // optional; empty means no webhooks
	Status     ClientStatus
	APIKeyID   string // the public part of the current API key
	CreatedAt  time.Time
	UpdatedAt  time.Time
	RevokedAt  *time.Time
}

// AllowsReturnURL reports whether u is registered, by exact string match:
// no prefix, case or normalization tricks.
func (c *FintechClient) AllowsReturnURL(u string) bool {
	for _, r := range c.ReturnURLs {
		if r == u {
			return true
		}
	}
	return false
}

// NewClient describes a client to create.
type NewClient struct {
	Name       string
	ReturnURLs []string
	WebhookURL string
}

// Validate checks the name and URLs.
func (n NewClient) Validate() error {
	if strings.TrimSpace(n.Name) == "" {
		return Errorf(EInvalid, "client name is required")
	}
	if len(n.Name) > 200 {
		return Errorf(EInvalid, "client name is longer than 200 characters")
	}
	if err := CheckDisplayText("client name", EInvalid, n.Name); err != nil {
		return err
	}
	if len(n.ReturnURLs) == 0 {
		return Errorf(EInvalidReturnURL, "at least one return URL is required")
	}
	for _, u := range n.ReturnURLs {
		if err := ValidateClientURL(u); err != nil {
			return Errorf(EInvalidReturnURL, "return URL %q %s", u, ErrorMessage(err))
		}
	}
	if n.WebhookURL != "" {
		if err := ValidateClientURL(n.WebhookURL); err != nil {
			return Errorf(EInvalid, "webhook URL %q %s", n.WebhookURL, ErrorMessage(err))
		}
	}
	return nil
}

// ValidateClientURL checks a return or webhook URL: absolute http or https,
// no user info, no fragment, and https unless the host is the local machine
// (localhost, 127.0.0.1, ::1), which is allowed plain http for development.
func ValidateClientURL(s string) error {
	if len(s) > 2000 {
		return Errorf(EInvalid, "URL is longer than 2000 characters")
	}
	// Browsers read a backslash as a slash and drop whitespace: the URL
	// they follow would not be the one registered.
	if strings.IndexFunc(s, func(r rune) bool { return r == '\\' || r <= ' ' || r == 0x7f }) >= 0 {
		return Errorf(EInvalid, "must not contain backslashes, spaces or control characters")
	}
	u, err := url.Parse(s)
	if err != nil {
		return Errorf(EInvalid, "not a valid URL")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return Errorf(EInvalid, "must be an absolute https:// URL")
	}
	if u.Host == "" || u.Opaque != "" {
		return Errorf(EInvalid, "must be an absolute URL with a host")
	}
	if u.User != nil {
		return Errorf(EInvalid, "must not contain user info")
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return Errorf(EInvalid, "must not contain a fragment (#...)")
	}
	if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		return Errorf(EInvalid, "must use https (plain http is allowed only for localhost and 127.0.0.1)")
	}
	return nil
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && (ip.Equal(net.IPv4(127, 0, 0, 1)) || ip.Equal(net.IPv6loopback))
}

// ClientSecrets are shown to the operator once, when made, and never again.
type ClientSecrets struct {
	APIKey        string // "tpp_<keyid>_<secret>"
	WebhookSecret string // "whsec_<base64>", for Standard Webhooks signatures
}

// ClientService manages fintech clients and authenticates their API keys.
type ClientService interface {
	CreateClient(ctx context.Context, in NewClient) (*FintechClient, ClientSecrets, error)
	Client(ctx context.Context, id string) (*FintechClient, error)
	ListClients(ctx context.Context, p PageRequest) (Page[*FintechClient], error)
	RevokeClient(ctx context.Context, id string) (*FintechClient, error)
	// RotateAPIKey makes a new key and invalidates the old one at once.
	RotateAPIKey(ctx context.Context, id string) (apiKey string, err error)
	// Authenticate returns the active client that owns apiKey, or
	// EUnauthorized for a malformed, unknown, wrong or revoked key.
	Authenticate(ctx context.Context, apiKey string) (*FintechClient, error)
	// WebhookSecret opens the client's sealed webhook signing secret.
	WebhookSecret(ctx context.Context, id string) (string, error)
}

// API key format: "tpp_" + key id + "_" + secret. The key id is looked up;
// only the SHA-256 of the secret is stored.
const (
	apiKeyPrefix      = "tpp_"
	apiKeyIDBytes     = 10 // 16 base32 characters
	apiKeySecretBytes = 32
)

// APIKey is a parsed API key.
type APIKey struct {
	ID     string
	Secret string
}

// NewAPIKey returns a fresh random key.
func NewAPIKey() APIKey {
	return APIKey{ID: RandomToken(apiKeyIDBytes), Secret: RandomToken(apiKeySecretBytes)}
}

// String returns the key as given to the client.
func (k APIKey) String() string { return apiKeyPrefix + k.ID + "_" + k.Secret }

// Hash returns the SHA-256 of the secret part, the only form that is stored.
func (k APIKey) Hash() []byte {
	h := sha256.Sum256([]byte(k.Secret))
	return h[:]
}

// ParseAPIKey splits a key into id and secret, or fails with EUnauthorized.
func ParseAPIKey(s string) (APIKey, error) {
	bad := Errorf(EUnauthorized, "API key is missing or malformed")
	rest, ok := strings.CutPrefix(s, apiKeyPrefix)
	if !ok {
		return APIKey{}, bad
	}
	id, secret, ok := strings.Cut(rest, "_")
	if !ok || len(id) != idEncoding.EncodedLen(apiKeyIDBytes) || len(secret) != idEncoding.EncodedLen(apiKeySecretBytes) {
		return APIKey{}, bad
	}
	if _, err := idEncoding.DecodeString(id); err != nil {
		return APIKey{}, bad
	}
	if _, err := idEncoding.DecodeString(secret); err != nil {
		return APIKey{}, bad
	}
	return APIKey{ID: id, Secret: secret}, nil
}

// NewWebhookSecret returns a Standard Webhooks signing secret:
// "whsec_" + base64 of 32 random bytes.
func NewWebhookSecret() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("tpp: crypto/rand: " + err.Error())
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// WebhookSecretAD is the associated data a client's webhook secret is sealed with.
func WebhookSecretAD(clientID string) string { return "client:" + clientID + ":webhook" }

// AccessTokenAD is the associated data a consent's OAuth access token is sealed with.
func AccessTokenAD(consentID string) string { return "consent:" + consentID + ":access_token" }
