package sign

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
)

// ErrBadSignature is wrapped by every error of Verify: the object has no
// valid signature by a trusted key and must be treated as missing.
var ErrBadSignature = errors.New("signature refused")

// trustedKeysVar names the setting that ParseTrustedKeys reads, for errors.
const trustedKeysVar = "TASKRUNNER_CACHE_TRUSTED_KEYS"

// Verifier checks cache signatures against a set of trusted ed25519 public
// keys; a signature by any one of them is enough. It is safe for use by
// several goroutines at once.
type Verifier struct {
	// trusted maps a key's wire encoding to the key.
	trusted map[string]ssh.PublicKey
}

// ParseTrustedKeys parses the value of TASKRUNNER_CACHE_TRUSTED_KEYS: one
// public key per line, "ssh-ed25519 AAAA… comment" as in a .pub file. Blank
// lines and lines starting with # are ignored; CRLF line ends are accepted,
// and so is "|" for a newline, as in TASKRUNNER_CACHE_SIGNING_KEY (without
// it, keys joined by "|" would read as one key whose comment hides the
// others).
//
// A line that is not an ed25519 public key (an RSA or ECDSA key, a private
// key, an allowed_signers line with a name before the key) is refused with an
// error that names the setting and the line number; no error quotes the line.
// A value with no key at all is refused too.
func ParseTrustedKeys(text string) (*Verifier, error) {
	v := &Verifier{trusted: map[string]ssh.PublicKey{}}
	for i, line := range strings.Split(strings.ReplaceAll(text, "|", "\n"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		pub, err := parseTrustedKey(line)
		if err != nil {
			return nil, fmt.Errorf("%s: line %d: %s", trustedKeysVar, i+1, err)
		}
		v.trusted[string(pub.Marshal())] = pub
	}
	if len(v.trusted) == 0 {
		return nil, errors.New(trustedKeysVar + ": no key: give one ssh-ed25519 public key per line, or unset it")
	}
	return v, nil
}

// parseTrustedKey parses one line of TASKRUNNER_CACHE_TRUSTED_KEYS. Its
// errors never quote the line: a private key pasted by mistake must not end
// up in a log.
func parseTrustedKey(line string) (ssh.PublicKey, error) {
	if strings.HasPrefix(line, "-----BEGIN") || strings.HasPrefix(line, "-----END") {
		return nil, errors.New("a private key, not a public key: give the line of the .pub file (ssh-ed25519 AAAA… comment)")
	}
	fields := strings.Fields(line)
	switch {
	case fields[0] == ssh.KeyAlgoED25519:
	case isKeyType(fields[0]):
		return nil, errors.New(describeKind(fields[0]) + ": cache signatures are made with ed25519 keys only: give ssh-ed25519 keys")
	case len(fields) > 1 && isKeyType(fields[1]):
		return nil, errors.New("a name or options before the key: give the key alone (ssh-ed25519 AAAA… comment)")
	default:
		return nil, errors.New("not a public key: give the line of the .pub file (ssh-ed25519 AAAA… comment)")
	}
	damaged := errors.New("the ssh-ed25519 key is damaged: copy the whole line of the .pub file")
	if len(fields) < 2 {
		return nil, damaged
	}
	blob, err := base64.StdEncoding.DecodeString(fields[1])
	if err != nil {
		return nil, damaged
	}
	pub, err := ssh.ParsePublicKey(blob)
	if err != nil || pub.Type() != ssh.KeyAlgoED25519 {
		return nil, damaged
	}
	return pub, nil
}

// isKeyType reports whether s is the name of an SSH public key type.
func isKeyType(s string) bool {
	switch s {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoRSA, ssh.KeyAlgoDSA,
		ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
		ssh.KeyAlgoSKED25519, ssh.KeyAlgoSKECDSA256:
		return true
	}
	return strings.HasSuffix(s, "-cert-v01@openssh.com")
}

// Trusts reports whether pub, an authorized_keys line such as
// Signer.PublicKey returns, is one of the trusted keys. A signing key that
// the verifier does not trust uploads objects that no build with the same
// settings will restore.
func (v *Verifier) Trusts(pub string) bool {
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(pub))
	if err != nil {
		return false
	}
	_, ok := v.trusted[string(k.Marshal())]
	return ok
}

// Verify checks that sig, the content of the object at SignatureKey(key), is
// an armored SSH signature by a trusted key, in Namespace, of
// Message(key, sum). Both sha512 and sha256 signatures are accepted, as
// ssh-keygen -Y verify does.
//
// Every error wraps ErrBadSignature and says why in a few words: no
// signature, malformed signature, signed by an untrusted key, wrong
// namespace, or a signature that does not match the object.
func (v *Verifier) Verify(key string, sum [sha256.Size]byte, sig []byte) error {
	if len(bytes.TrimSpace(sig)) == 0 {
		return fmt.Errorf("%w: no signature", ErrBadSignature)
	}
	if len(sig) > MaxSignatureSize {
		return fmt.Errorf("%w: malformed signature (larger than %d KiB)", ErrBadSignature, MaxSignatureSize>>10)
	}
	s, err := parseSignature(sig)
	if err != nil {
		return fmt.Errorf("%w: malformed signature (not an armored SSH signature)", ErrBadSignature)
	}
	pub, ok := v.trusted[string(s.PublicKey.Marshal())]
	if !ok {
		return fmt.Errorf("%w: signed by an untrusted key %s (add its public key to %s to trust it)",
			ErrBadSignature, ssh.FingerprintSHA256(s.PublicKey), trustedKeysVar)
	}
	if s.Namespace != Namespace {
		return fmt.Errorf("%w: wrong namespace (not %s)", ErrBadSignature, Namespace)
	}
	if err := sshsig.Verify(bytes.NewReader(Message(key, sum)), s, pub, s.HashAlgorithm, Namespace); err != nil {
		return fmt.Errorf("%w: signature does not match the object (altered, or moved from another key)", ErrBadSignature)
	}
	return nil
}

// parseSignature decodes an armored signature. Unlike sshsig.Unarmor it
// refuses text before or after the armored block, as ssh-keygen does.
func parseSignature(b []byte) (*sshsig.Signature, error) {
	b = bytes.TrimSpace(b)
	block, rest := pem.Decode(b)
	if block == nil || block.Type != sshsig.PEMType || len(block.Headers) > 0 ||
		len(rest) > 0 || !bytes.HasPrefix(b, []byte("-----BEGIN ")) {
		return nil, errors.New("not an armored SSH signature")
	}
	return sshsig.ParseSignature(block.Bytes)
}
