package sandbox

import (
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Context endpoints: installation, device-server, session-server, PSD2
// credential, sessions and users (docs/bunq-api.md §1, §5.2).

func parseRSAPublicKey(s string) (*rsa.PublicKey, bool) {
	block, _ := pem.Decode([]byte(strings.TrimSpace(s)))
	if block == nil {
		return nil, false
	}
	if k, err := x509.ParsePKIXPublicKey(block.Bytes); err == nil {
		if rk, ok := k.(*rsa.PublicKey); ok {
			return rk, true
		}
		return nil, false
	}
	if rk, err := x509.ParsePKCS1PublicKey(block.Bytes); err == nil {
		return rk, true
	}
	return nil, false
}

func (b *Bank) hInstallation(c *call) reply {
	var in struct {
		ClientPublicKey string `json:"client_public_key"`
	}
	if r := decode(c.body, &in); r != nil {
		return *r
	}
	if in.ClientPublicKey == "" {
		return badRequest("The field client_public_key is required.")
	}
	pub, valid := parseRSAPublicKey(in.ClientPublicKey)
	// jsrsasign (used by the Postman collection) sometimes makes 2047-bit
	// moduli for a 2048-bit request; bunq accepts those.
	if !valid || pub.N.BitLen() < 2047 {
		return badRequest("The client public key is not a valid RSA public key of at least 2048 bits in PEM format.")
	}
	inst := &installation{
		id: c.st.next("installation"), tokenID: c.st.next("token"), token: randomHex(64),
		pub: pub, pubPEM: in.ClientPublicKey, created: c.now,
	}
	c.st.installations[inst.token] = inst
	c.st.instByID[inst.id] = inst
	return ok(
		item("Id", obj{"id": inst.id}),
		item("Token", obj{"id": inst.tokenID, "created": ts(c.now), "updated": ts(c.now), "token": inst.token}),
		item("ServerPublicKey", obj{"server_public_key": b.pubPEM}),
	)
}

func (b *Bank) hSandboxUser(kind string) func(*call) reply {
	return func(c *call) reply {
		var u *user
		if kind == "UserCompany" {
			u = c.st.newCompany(c.now)
		} else {
			u = c.st.newPerson(c.now)
		}
		c.st.newAccount("MonetaryAccountBank", u, "bunq account", c.now)
		return ok(item("ApiKey", obj{"api_key": u.apiKey}))
	}
}

// secretUsable reports whether an API key may open contexts at now: a
// revoked grant's token may not, nor a PSD2 credential never used within
// its expiry_time.
func (st *state) secretUsable(secret string, now time.Time) bool {
	o, found := st.apiKeys[secret]
	if !found {
		return false
	}
	switch o.kind {
	case "grant":
		g := st.grants[o.id]
		return g != nil && !g.revoked
	case "credential":
		cr := st.credentials[o.id]
		return cr != nil && (cr.status == "ACTIVE" || now.Before(cr.expiry))
	}
	return true
}

func (b *Bank) hDeviceServer(c *call) reply {
	var in struct {
		Description  string   `json:"description"`
		Secret       string   `json:"secret"`
		PermittedIPs []string `json:"permitted_ips"`
	}
	if r := decode(c.body, &in); r != nil {
		return *r
	}
	if in.Description == "" {
		return badRequest("The field description is required.")
	}
	if !c.st.secretUsable(in.Secret, c.now) {
		return badRequest(txtBadCredentials)
	}
	d := &device{id: c.st.next("device"), installationID: c.inst.id, secret: in.Secret, description: in.Description, ips: in.PermittedIPs, createdIP: c.ip}
	c.st.devices = append(c.st.devices, d)
	return idReply(d.id)
}

// deviceFor finds the device that binds secret to the installation.
func (st *state) deviceFor(instID int64, secret string) *device {
	for _, d := range st.devices {
		if d.installationID == instID && d.secret == secret {
			return d
		}
	}
	return nil
}

// ipAllowed applies bunq's IP binding (bunq/doc DESCRIPTION.md §IP
// addresses): a device is bound to the IP it was created from, or to its
// permitted_ips, where "*" allows any.
func ipAllowed(d *device, ip string) bool {
	if len(d.ips) == 0 {
		return ip == d.createdIP
	}
	for _, p := range d.ips {
		if p == "*" || p == ip {
			return true
		}
	}
	return false
}

// pspFirstSession and pspSession are the PSD2 key's session lifetimes:
// the first session lasts an hour (§1.3 step 5); later ones follow the
// PSP's auto-logout setting (§3.1), 90 days until a test changes it
// (PUT /_sandbox/users/{id}/session-timeout).
const (
	pspFirstSession = 3600
	pspSession      = 90 * 24 * 3600
)

func (b *Bank) hSessionServer(c *call) reply {
	var in struct {
		Secret string `json:"secret"`
	}
	if r := decode(c.body, &in); r != nil {
		return *r
	}
	owner, found := c.st.apiKeys[in.Secret]
	if !found || !c.st.secretUsable(in.Secret, c.now) {
		return badRequest(txtBadCredentials)
	}
	d := c.st.deviceFor(c.inst.id, in.Secret)
	if d == nil || !ipAllowed(d, c.ip) {
		return badRequest(txtBadCredentials)
	}
	var (
		userID  int64
		timeout int
		elem    obj
	)
	switch owner.kind {
	case "user":
		u := c.st.users[owner.id]
		userID, timeout = u.id, u.sessionTimeout
		t, o := c.st.renderUser(u)
		elem = item(t, o)
	case "credential":
		cr := c.st.credentials[owner.id]
		psp := c.st.users[cr.pspID]
		if cr.sessions == 0 {
			psp.sessionTimeout = pspFirstSession
		} else {
			psp.sessionTimeout = psp.autoLogout
		}
		cr.sessions++
		if cr.status == "PENDING_FIRST_USE" {
			cr.status, cr.updated, cr.installationID = "ACTIVE", c.now, c.inst.id
		}
		userID, timeout = psp.id, psp.sessionTimeout
		t, o := c.st.renderUser(psp)
		elem = item(t, o)
	case "grant":
		g := c.st.grants[owner.id]
		userID, timeout = g.id, c.st.users[g.pspID].sessionTimeout
		elem = item("UserApiKey", c.st.renderGrant(g))
	}
	s := &session{
		id: c.st.next("session"), tokenID: c.st.next("token"), token: randomHex(64),
		installationID: c.inst.id, userID: userID, created: c.now,
		expires: c.now.Add(time.Duration(timeout) * time.Second), timeout: time.Duration(timeout) * time.Second,
	}
	c.st.sessions[s.token] = s
	return ok(
		item("Id", obj{"id": s.id}),
		item("Token", obj{"id": s.tokenID, "created": ts(c.now), "updated": ts(c.now), "token": s.token}),
		elem,
	)
}

func (b *Bank) hDeleteSession(c *call) reply {
	id := c.id("sessionID")
	if id == 0 || id == c.sess.id {
		delete(c.st.sessions, c.sess.token)
		return ok()
	}
	for tok, s := range c.st.sessions {
		if s.id == id && s.installationID == c.sess.installationID {
			delete(c.st.sessions, tok)
			return ok()
		}
	}
	return notFound("Session")
}

// psd2Roles are the role names a sandbox certificate's CN may end in.
// CBPII and PIISP name the same role (confirmation of funds).
var psd2Roles = map[string]bool{"AISP": true, "PISP": true, "CBPII": true, "PIISP": true}

// certRoles returns the roles at the end of a certificate name
// ("My App PISP AISP" → [PISP AISP]).
func certRoles(cn string) (roles []string, rest string) {
	words := strings.Fields(cn)
	i := len(words)
	for i > 0 && psd2Roles[strings.ToUpper(words[i-1])] {
		i--
	}
	for _, w := range words[i:] {
		roles = append(roles, strings.ToUpper(w))
	}
	return roles, strings.Join(words[:i], " ")
}

// distinguishedName spells a certificate's subject as the bank shows it
// (Config.DNFormat): RFC 2253, most specific attribute first, or OpenSSL's
// one-line form in certificate order.
func (st *state) distinguishedName(cert *x509.Certificate) string {
	var seq pkix.RDNSequence
	if _, err := asn1.Unmarshal(cert.RawSubject, &seq); err != nil || !st.opensslDN {
		return cert.Subject.String()
	}
	var b strings.Builder
	for _, rdn := range seq {
		for _, atv := range rdn {
			fmt.Fprintf(&b, "/%s=%v", dnAttributeName(atv.Type.String()), atv.Value)
		}
	}
	return b.String()
}

// dnAttributeName is OpenSSL's short name for an attribute an eIDAS
// certificate subject carries, or the OID itself.
func dnAttributeName(oid string) string {
	switch oid {
	case "2.5.4.3":
		return "CN"
	case "2.5.4.6":
		return "C"
	case "2.5.4.7":
		return "L"
	case "2.5.4.8":
		return "ST"
	case "2.5.4.10":
		return "O"
	case "2.5.4.11":
		return "OU"
	case "2.5.4.5":
		return "serialNumber"
	case "2.5.4.97":
		return "organizationIdentifier"
	}
	return oid
}

func (b *Bank) hCredential(c *call) reply {
	var in struct {
		Cert      string `json:"client_payment_service_provider_certificate"`
		Chain     string `json:"client_payment_service_provider_certificate_chain"`
		Signature string `json:"client_public_key_signature"`
	}
	if r := decode(c.body, &in); r != nil {
		return *r
	}
	switch {
	case in.Cert == "":
		return badRequest("The field client_payment_service_provider_certificate is required.")
	case in.Chain == "":
		return badRequest("The field client_payment_service_provider_certificate_chain is required.")
	case in.Signature == "":
		return badRequest("The field client_public_key_signature is required.")
	}
	block, _ := pem.Decode([]byte(strings.TrimSpace(in.Cert)))
	if block == nil || block.Type != "CERTIFICATE" {
		return badRequest("The certificate is not a PEM encoded X.509 certificate.")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return badRequest("The certificate is not a valid X.509 certificate.")
	}
	if c.now.Before(cert.NotBefore) || c.now.After(cert.NotAfter) {
		return badRequest("The certificate is not valid at this time.")
	}
	pub, isRSA := cert.PublicKey.(*rsa.PublicKey)
	if !isRSA {
		return badRequest("The certificate must hold an RSA public key.")
	}
	// Signed data: the installation's client PEM with exactly one trailing
	// newline, immediately followed by the installation token (§1.3).
	signed := strings.TrimRight(c.inst.pubPEM, " \t\r\n") + "\n" + c.inst.token
	if !verifyBody(pub, []byte(signed), in.Signature) {
		return badRequest("The client public key signature is invalid: it must sign the installation's public key and token with the certificate's key.")
	}
	if len([]rune(cert.Subject.CommonName)) > 64 {
		return badRequest("The certificate name may be at most 64 characters long.")
	}
	roles, name := certRoles(cert.Subject.CommonName)
	if len(roles) == 0 {
		return badRequest("The certificate name must end in its PSD2 roles (AISP, PISP and/or CBPII), e.g. \"My App AISP PISP\".")
	}
	dn := c.st.distinguishedName(cert)
	var psp *user
	for _, id := range c.st.order {
		if u := c.st.users[id]; u.kind == "UserPaymentServiceProvider" && u.certDN == dn {
			psp = u
		}
	}
	if psp == nil {
		display := name
		if len(cert.Subject.Organization) > 0 && cert.Subject.Organization[0] != "" {
			display = cert.Subject.Organization[0]
		}
		if display == "" {
			display = cert.Subject.CommonName
		}
		psp = &user{
			id: c.st.next("user"), kind: "UserPaymentServiceProvider", created: c.now, updated: c.now,
			publicUUID: randomUUID(), name: display, sessionTimeout: pspFirstSession, autoLogout: pspSession, certDN: dn, roles: roles,
		}
		c.st.addUser(psp)
	}
	psp.roles = roles
	cr := &credential{
		id: c.st.next("credential"), pspID: psp.id, token: randomHex(64), status: "PENDING_FIRST_USE",
		created: c.now, updated: c.now, expiry: c.now.Add(time.Hour),
	}
	c.st.credentials[cr.id] = cr
	c.st.apiKeys[cr.token] = keyOwner{kind: "credential", id: cr.id}
	o := obj{
		"id": cr.id, "created": ts(cr.created), "updated": ts(cr.updated), "status": cr.status,
		"expiry_time": ts(cr.expiry), "token_value": cr.token,
	}
	if c.st.nullEmpty {
		o["permitted_device"] = nil // no device until first use (§1.3)
	}
	return ok(item("CredentialPasswordIp", o))
}

// sessionUser renders the session's own user element.
func (c *call) sessionUser() (string, obj) {
	if g := c.st.grants[c.sess.userID]; g != nil {
		return "UserApiKey", c.st.renderGrant(g)
	}
	return c.st.renderUser(c.st.users[c.sess.userID])
}

func (b *Bank) hUserList(c *call) reply {
	t, o := c.sessionUser()
	return unpaged([]obj{item(t, o)})
}

func (b *Bank) hUserGet(kind string) func(*call) reply {
	return func(c *call) reply {
		if c.id("userID") != c.sess.userID {
			return notFound("User")
		}
		t, o := c.sessionUser()
		if kind != "" && t != kind {
			return notFound("User")
		}
		return ok(item(t, o))
	}
}

// scope checks the path's {userID} against the session and returns the
// user whose data the session sees: the granting user for an OAuth
// session, else the session user.
func (c *call) scope() (*user, *reply) {
	if c.id("userID") != c.sess.userID {
		r := notFound("User")
		return nil, &r
	}
	if g := c.st.grants[c.sess.userID]; g != nil {
		return c.st.users[g.userID], nil
	}
	return c.st.users[c.sess.userID], nil
}

// grant returns the session's OAuth grant, or nil.
func (c *call) grant() *grant { return c.st.grants[c.sess.userID] }

// account resolves {accountID} within the session's scope.
func (c *call) account(kind string) (*user, *account, *reply) {
	u, r := c.scope()
	if r != nil {
		return nil, nil, r
	}
	a := c.st.accounts[c.id("accountID")]
	if a == nil || !a.heldBy(u.id) || (kind != "" && a.kind != kind) {
		rep := notFound("Monetary account")
		return nil, nil, &rep
	}
	return u, a, nil
}

// accountAs is account("") for a call within a PSD2 role's scope.
func (c *call) accountAs(role string) (*user, *account, *reply) {
	u, a, r := c.account("")
	if r == nil {
		r = c.needRole(role)
	}
	return u, a, r
}

// provider returns the PSD2 provider acting in the session: the PSP
// itself, or the one that requested the OAuth connection. nil for a user's
// own API key, which no role limits.
func (c *call) provider() *user {
	if g := c.grant(); g != nil {
		return c.st.users[g.pspID]
	}
	if u := c.st.users[c.sess.userID]; u != nil && u.kind == "UserPaymentServiceProvider" {
		return u
	}
	return nil
}

// needRole answers 403 (§6.3: not allowed) when a PSD2 provider without
// role makes the call: PSD2 providers are limited to their role's scope
// (§4.4), and in the sandbox their roles are the words that end the
// certificate's name (§7). The text is ours; bunq's is not documented.
func (c *call) needRole(role string) *reply {
	p := c.provider()
	if p == nil || slices.Contains(p.roles, role) {
		return nil
	}
	r := bunqErr(403, "This call needs the PSD2 role "+role+"; the certificate of this payment service provider gives "+strings.Join(p.roles, ", ")+".")
	return &r
}
