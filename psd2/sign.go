package psd2

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// Sign returns bunq's body signature: RSA PKCS#1 v1.5 over SHA-256 of body,
// standard base64, as sent in X-Bunq-Client-Signature.
func Sign(key *rsa.PrivateKey, body []byte) (string, error) {
	sum := sha256.Sum256(body)
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("psd2: sign body: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// Verify checks a base64 X-Bunq-Server-Signature over body with key. It
// accepts whitespace inside the base64 text (some proxies fold headers).
func Verify(key *rsa.PublicKey, body []byte, signature string) error {
	if signature == "" {
		return errors.New("signature missing")
	}
	if strings.ContainsAny(signature, " \t\r\n\v\f") {
		signature = strings.Join(strings.Fields(signature), "")
	}
	var buf [1024]byte // 8192-bit keys; longer text is no signature of ours
	if base64.StdEncoding.DecodedLen(len(signature)) > len(buf) {
		return errors.New("signature is too long")
	}
	n, err := base64.StdEncoding.Decode(buf[:], []byte(signature))
	if err != nil {
		return fmt.Errorf("signature is not base64: %w", err)
	}
	sig := buf[:n]
	sum := sha256.Sum256(body)
	return rsa.VerifyPKCS1v15(key, crypto.SHA256, sum[:], sig)
}

// signPSD2 makes client_public_key_signature: the certificate key's signature
// over the installation's client public key PEM, ending in exactly one "\n",
// immediately followed by the installation token (reference §1.3).
func signPSD2(certKey crypto.Signer, clientPublicPEM, installationToken string) (string, error) {
	msg := strings.TrimRight(clientPublicPEM, "\r\n\t ") + "\n" + installationToken
	sum := sha256.Sum256([]byte(msg))
	sig, err := certKey.Sign(rand.Reader, sum[:], crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("psd2: sign installation key with certificate key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// publicKeyPEM encodes key as a SubjectPublicKeyInfo PEM ("BEGIN PUBLIC KEY"),
// ending in one "\n".
func publicKeyPEM(key *rsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return "", fmt.Errorf("psd2: encode public key: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// privateKeyPEM encodes key as PKCS#8 PEM, as the SDKs store it.
func privateKeyPEM(key *rsa.PrivateKey) (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", fmt.Errorf("psd2: encode private key: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), nil
}

// parsePublicKeyPEM reads an RSA public key in SubjectPublicKeyInfo or
// PKCS#1 PEM form.
func parsePublicKeyPEM(s string) (*rsa.PublicKey, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, errors.New("psd2: public key is not PEM")
	}
	if block.Type == "RSA PUBLIC KEY" {
		return x509.ParsePKCS1PublicKey(block.Bytes)
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("psd2: parse public key: %w", err)
	}
	rk, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("psd2: public key is %T, want RSA", k)
	}
	return rk, nil
}

// parsePrivateKeyDER reads an RSA private key of PEM block type typ.
func parsePrivateKeyDER(typ string, der []byte) (*rsa.PrivateKey, error) {
	if typ == "RSA PRIVATE KEY" {
		return x509.ParsePKCS1PrivateKey(der)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("psd2: parse private key: %w", err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("psd2: private key is %T, want RSA", k)
	}
	return rk, nil
}
