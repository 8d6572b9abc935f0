// Package sign signs and verifies remote-cache objects with SSH signatures
// (SSHSIG, what `ssh-keygen -Y sign` writes), so that a cache shared by many
// builds only restores what a trusted signing key uploaded.
//
// A signature binds an object's key, relative to the cache prefix, and the
// SHA-256 of its exact bytes: an object can be neither altered nor moved to
// another key. The signed message is plain text (Message), so a person can
// check an object by hand:
//
//	printf 'taskrunner-cache v1\nkey %s\nsha256 %s\n' "$key" "$(sha256sum < file | cut -d' ' -f1)" \
//	  | ssh-keygen -Y verify -f allowed_signers -I taskrunner -n taskrunner-cache -s file.sig
//
// Keys are ed25519 only: one kind of key keeps the settings simple to explain
// and to check, and ed25519 signatures are small and fast.
//
// Errors never contain private key material; a public key or its
// fingerprint may appear.
package sign

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
)

// Namespace is the SSHSIG namespace of every cache signature. It keeps a
// signature made for the cache from being accepted anywhere else (a git
// commit, a file signature), and the other way round.
const Namespace = "taskrunner-cache"

// hashAlgorithm is the hash SSHSIG applies to the message before signing;
// sha512 is what ssh-keygen uses by default.
const hashAlgorithm = sshsig.HashSHA512

// MaxSignatureSize is the largest signature Verify accepts. An armored
// ed25519 signature is about 300 bytes; a reader of a signature object should
// stop after MaxSignatureSize+1 bytes and let Verify refuse it.
const MaxSignatureSize = 16 << 10

// SignatureKey returns the key of the object that holds the signature of the
// object at key: the same key with ".sig" appended.
func SignatureKey(key string) string { return key + ".sig" }

// Message returns the text that is signed for the object at key whose bytes
// have the SHA-256 sum:
//
//	taskrunner-cache v1\nkey <key>\nsha256 <64 lowercase hex digits>\n
//
// The sum has a fixed length at the end, so the key is recovered exactly
// from a message whatever characters it holds: no two (key, sum) pairs share
// a message.
func Message(key string, sum [sha256.Size]byte) []byte {
	return fmt.Appendf(nil, "taskrunner-cache v1\nkey %s\nsha256 %x\n", key, sum)
}

// signingKeyVar names the setting that ParseSigningKey reads, for errors.
const signingKeyVar = "TASKRUNNER_CACHE_SIGNING_KEY"

// makeKey is the advice given whenever the signing key is of the wrong kind.
const makeKey = "make one with ssh-keygen -t ed25519 -N '' -f FILE and set this to the text of FILE"

// Signer signs cache objects with an ed25519 private key. It is safe for
// use by several goroutines at once.
type Signer struct {
	signer ssh.Signer
}

// ParseSigningKey parses the value of TASKRUNNER_CACHE_SIGNING_KEY: the text
// of an unencrypted OpenSSH ed25519 private key, as `ssh-keygen -t ed25519`
// writes it. White space around the text and around each line, CRLF line
// ends, and "|" standing for each newline (some CI secret stores cannot hold
// newlines) are accepted.
//
// Encrypted keys, keys of other kinds (RSA, ECDSA, …), PEM private keys
// ("BEGIN PRIVATE KEY") and public keys are refused with an error that names
// the setting and says what to do; no error contains any of the text.
func ParseSigningKey(text string) (*Signer, error) {
	text = normalizeKey(text)
	if text == "" {
		return nil, signingKeyError("empty: set it to the text of an unencrypted OpenSSH ed25519 private key, or unset it")
	}
	firstLine, _, _ := strings.Cut(text, "\n")
	if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(firstLine)); err == nil {
		return nil, signingKeyError("this is a public key: set it to the private key, the key file without .pub")
	}
	block, rest := pem.Decode([]byte(text))
	if block == nil {
		return nil, signingKeyError("not an OpenSSH private key: set it to the whole text of the key file, " +
			"from -----BEGIN OPENSSH PRIVATE KEY----- to -----END OPENSSH PRIVATE KEY-----")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, signingKeyError("text after the end of the key: set it to one key file's text only")
	}
	switch block.Type {
	case "OPENSSH PRIVATE KEY":
	case "RSA PRIVATE KEY":
		return nil, signingKeyError("an RSA key in PEM format: cache signatures need an OpenSSH ed25519 key: " + makeKey)
	case "EC PRIVATE KEY":
		return nil, signingKeyError("an ECDSA key in PEM format: cache signatures need an OpenSSH ed25519 key: " + makeKey)
	case "DSA PRIVATE KEY":
		return nil, signingKeyError("a DSA key in PEM format: cache signatures need an OpenSSH ed25519 key: " + makeKey)
	case "PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
		return nil, signingKeyError("a PEM private key (BEGIN PRIVATE KEY), not an OpenSSH one: " + makeKey)
	default:
		return nil, signingKeyError("a PEM block that is not an OpenSSH private key: " + makeKey)
	}

	raw, err := ssh.ParseRawPrivateKey([]byte(text))
	if err != nil {
		// The library's messages are not shown: some quote parts of the key.
		var encrypted *ssh.PassphraseMissingError
		if errors.As(err, &encrypted) {
			if encrypted.PublicKey != nil && encrypted.PublicKey.Type() != ssh.KeyAlgoED25519 {
				return nil, signingKeyError(describeKind(encrypted.PublicKey.Type()) + ": cache signatures need an ed25519 key: " + makeKey)
			}
			return nil, signingKeyError(`the key is encrypted with a passphrase, which CI cannot type: ` +
				`store it unencrypted (ssh-keygen -p -N "" -f FILE removes the passphrase)`)
		}
		return nil, signingKeyError("the OpenSSH private key cannot be read (truncated, altered, or of an unsupported kind): " +
			"set it to the whole text of the key file, or " + makeKey)
	}
	var priv ed25519.PrivateKey
	switch k := raw.(type) {
	case ed25519.PrivateKey:
		priv = k
	case *ed25519.PrivateKey:
		priv = *k
	default:
		kind := "a key that is not ed25519"
		if s, err := ssh.NewSignerFromKey(raw); err == nil {
			kind = describeKind(s.PublicKey().Type())
		}
		return nil, signingKeyError(kind + ": cache signatures need an ed25519 key: " + makeKey)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, signingKeyError("the ed25519 key cannot be used: " + makeKey)
	}
	return &Signer{signer: signer}, nil
}

// normalizeKey undoes what CI secret stores and copy and paste do to a key's
// text: "|" for newlines, CRLF, indentation and trailing blanks.
func normalizeKey(text string) string {
	lines := strings.Split(strings.ReplaceAll(text, "|", "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

func signingKeyError(msg string) error {
	return errors.New(signingKeyVar + ": " + msg)
}

// describeKind names the kind of key of an SSH key type, as in
// "an RSA key (ssh-rsa)".
func describeKind(keyType string) string {
	switch {
	case strings.HasSuffix(keyType, "-cert-v01@openssh.com"):
		return "a certificate (" + keyType + ")"
	case keyType == ssh.KeyAlgoRSA:
		return "an RSA key (" + keyType + ")"
	case keyType == ssh.KeyAlgoDSA:
		return "a DSA key (" + keyType + ")"
	case strings.HasPrefix(keyType, "ecdsa-sha2-"):
		return "an ECDSA key (" + keyType + ")"
	case strings.HasPrefix(keyType, "sk-"):
		return "a security-key key (" + keyType + ")"
	}
	return "a " + keyType + " key"
}

// Sign returns the armored SSH signature ("-----BEGIN SSH SIGNATURE-----")
// of Message(key, sum), to be stored at SignatureKey(key).
func (s *Signer) Sign(key string, sum [sha256.Size]byte) ([]byte, error) {
	sig, err := sshsig.Sign(bytes.NewReader(Message(key, sum)), s.signer, hashAlgorithm, Namespace)
	if err != nil {
		return nil, fmt.Errorf("signing %s: %w", key, err)
	}
	return sshsig.Armor(sig), nil
}

// PublicKey returns the signer's public key as an authorized_keys line
// without a comment ("ssh-ed25519 AAAA…"), the form that
// TASKRUNNER_CACHE_TRUSTED_KEYS takes.
func (s *Signer) PublicKey() string {
	return strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(s.signer.PublicKey())), "\n")
}
