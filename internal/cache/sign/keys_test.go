package sign

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// Test keys are made once per run: RSA generation takes a while.
var (
	edKey    = newEd25519(nil)
	rsaKey   = must(rsa.GenerateKey(rand.Reader, 2048))
	ecdsaKey = must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func newEd25519(testing.TB) ed25519.PrivateKey {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return priv
}

// openSSHText returns the OpenSSH private key text of key, as ssh-keygen
// writes it; with a passphrase it is encrypted.
func openSSHText(t testing.TB, key crypto.PrivateKey, passphrase string) string {
	t.Helper()
	var block *pem.Block
	var err error
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(key, "test@example")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(key, "test@example", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(block))
}

func pemText(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

// authorizedKey returns the "ssh-… AAAA…" line of key's public half.
func authorizedKey(t *testing.T, key crypto.Signer) string {
	t.Helper()
	pub, err := ssh.NewPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
}

func parseSigner(t *testing.T, key ed25519.PrivateKey) *Signer {
	t.Helper()
	s, err := ParseSigningKey(openSSHText(t, key, ""))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkErrorLine asserts that err is one line starting with prefix, that it
// says want, and that no 8 characters in a row of the key material in input
// (every line that is not a PEM BEGIN or END line) appear in it.
func checkErrorLine(t *testing.T, err error, prefix, want, input string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, prefix) {
		t.Errorf("error %q does not start with %q", msg, prefix)
	}
	if !strings.Contains(msg, want) {
		t.Errorf("error %q does not say %q", msg, want)
	}
	if strings.ContainsAny(msg, "\r\n") || strings.HasSuffix(msg, ".") {
		t.Errorf("error %q is not one line without a final period", msg)
	}
	if rest := strings.TrimPrefix(msg, prefix); rest != "" && rest[0] != strings.ToLower(rest)[0] {
		t.Errorf("error %q does not go on in lowercase", msg)
	}
	var material strings.Builder
	for _, line := range strings.FieldsFunc(input, func(r rune) bool { return r == '\n' || r == '|' }) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "-----") {
			material.WriteString(line)
		}
	}
	m := material.String()
	for i := 0; i+8 <= len(m); i++ {
		if strings.Contains(msg, m[i:i+8]) {
			t.Fatalf("error %q contains key material %q", msg, m[i:i+8])
		}
	}
}

func TestParseSigningKeyAccepts(t *testing.T) {
	text := openSSHText(t, edKey, "")
	want := authorizedKey(t, edKey)
	indented := ""
	for _, l := range strings.SplitAfter(text, "\n") {
		indented += "    " + l
	}
	tests := map[string]string{
		"as ssh-keygen writes it": text,
		"white space around":      "\n\n  \t" + text + "\n\n ",
		"CRLF":                    strings.ReplaceAll(text, "\n", "\r\n"),
		"| for newlines":          strings.ReplaceAll(strings.TrimSpace(text), "\n", "|"),
		"| and a trailing |":      strings.ReplaceAll(text, "\n", "|"),
		"indented lines":          indented,
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			s, err := ParseSigningKey(in)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.PublicKey(); got != want {
				t.Errorf("PublicKey() = %q, want %q", got, want)
			}
		})
	}
}

func TestParseSigningKeyRefuses(t *testing.T) {
	ed := openSSHText(t, edKey, "")
	edLines := strings.Split(strings.TrimSpace(ed), "\n")
	truncated := strings.Join(append(edLines[:2:2], edLines[len(edLines)-1]), "\n")
	tests := []struct {
		name, text, want string
	}{
		{"empty", "", "empty: set it to the text of an unencrypted OpenSSH ed25519 private key, or unset it"},
		{"only white space and |", " \n|\r\n ", "empty"},
		{"public key", authorizedKey(t, edKey) + " me@host\n", "this is a public key: set it to the private key"},
		{"not a key", "hunter2-not-a-key-at-all", "not an OpenSSH private key: set it to the whole text of the key file"},
		{"body without the BEGIN line", strings.Join(edLines[1:len(edLines)-1], "\n"), "not an OpenSSH private key"},
		{"truncated", truncated, "the OpenSSH private key cannot be read"},
		{"encrypted ed25519", openSSHText(t, edKey, "secret"), `encrypted with a passphrase, which CI cannot type: store it unencrypted (ssh-keygen -p -N "" -f FILE removes the passphrase)`},
		{"encrypted RSA", openSSHText(t, rsaKey, "secret"), "an RSA key (ssh-rsa): cache signatures need an ed25519 key"},
		{"OpenSSH RSA", openSSHText(t, rsaKey, ""), "an RSA key (ssh-rsa): cache signatures need an ed25519 key: make one with ssh-keygen -t ed25519 -N '' -f FILE"},
		{"OpenSSH ECDSA", openSSHText(t, ecdsaKey, ""), "an ECDSA key (ecdsa-sha2-nistp256): cache signatures need an ed25519 key"},
		{"PKCS#8 ed25519", pemText("PRIVATE KEY", must(x509.MarshalPKCS8PrivateKey(edKey))), "a PEM private key (BEGIN PRIVATE KEY), not an OpenSSH one: make one with ssh-keygen -t ed25519"},
		{"PKCS#1 RSA", pemText("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), "an RSA key in PEM format"},
		{"SEC 1 ECDSA", pemText("EC PRIVATE KEY", must(x509.MarshalECPrivateKey(ecdsaKey))), "an ECDSA key in PEM format"},
		{"other PEM block", pemText("CERTIFICATE", []byte("not really a certificate")), "a PEM block that is not an OpenSSH private key"},
		{"two keys", ed + openSSHText(t, newEd25519(t), ""), "text after the end of the key: set it to one key file's text only"},
		{"key and its public key", ed + authorizedKey(t, edKey), "text after the end of the key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSigningKey(tt.text)
			if s != nil {
				t.Errorf("got a signer")
			}
			checkErrorLine(t, err, "TASKRUNNER_CACHE_SIGNING_KEY: ", tt.want, tt.text)
		})
	}
}

func TestParseTrustedKeys(t *testing.T) {
	a, b, c := newEd25519(t), newEd25519(t), newEd25519(t)
	text := "# CI signing keys\r\n" +
		"\r\n" +
		authorizedKey(t, a) + " ci@example with spaces in the comment\r\n" +
		"   " + authorizedKey(t, b) + "\r\n" +
		"\t# " + authorizedKey(t, c) + " commented out\n"
	v, err := ParseTrustedKeys(text)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		key  ed25519.PrivateKey
		want bool
	}{{a, true}, {b, true}, {c, false}} {
		if got := v.Trusts(authorizedKey(t, tt.key)); got != tt.want {
			t.Errorf("Trusts(%s) = %v, want %v", authorizedKey(t, tt.key), got, tt.want)
		}
	}
	if !v.Trusts(authorizedKey(t, a) + " with a comment") {
		t.Error("a key line with a comment is not trusted")
	}
	if v.Trusts("garbage") || v.Trusts("") {
		t.Error("garbage is trusted")
	}

	// Some CI settings cannot hold newlines: "|" stands for one.
	v, err = ParseTrustedKeys(authorizedKey(t, a) + " ci|" + authorizedKey(t, c) + " laptop")
	if err != nil {
		t.Fatal(err)
	}
	if !v.Trusts(authorizedKey(t, a)) || !v.Trusts(authorizedKey(t, c)) || v.Trusts(authorizedKey(t, b)) {
		t.Error("keys joined by | are not trusted each")
	}
}

func TestParseTrustedKeysRefuses(t *testing.T) {
	good := authorizedKey(t, edKey) + " good\n"
	edPub := authorizedKey(t, edKey)
	rsaPub := authorizedKey(t, rsaKey)
	privText := openSSHText(t, edKey, "")
	privBody := strings.Split(privText, "\n")[1]
	tests := []struct {
		name, text, want string
	}{
		{"empty", "", "TASKRUNNER_CACHE_TRUSTED_KEYS: no key: give one ssh-ed25519 public key per line, or unset it"},
		{"comments only", "# nothing yet\n\n", "TASKRUNNER_CACHE_TRUSTED_KEYS: no key"},
		{"RSA key after |", strings.TrimSpace(good) + "|" + rsaPub, "line 2: an RSA key (ssh-rsa)"},
		{"RSA key", good + rsaPub + " old\n", "line 2: an RSA key (ssh-rsa): cache signatures are made with ed25519 keys only: give ssh-ed25519 keys"},
		{"ECDSA key", authorizedKey(t, ecdsaKey) + "\n" + good, "line 1: an ECDSA key (ecdsa-sha2-nistp256): cache signatures are made with ed25519 keys only"},
		{"certificate", "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQ\n", "line 1: a certificate (ssh-ed25519-cert-v01@openssh.com)"},
		{"private key", privText, "line 1: a private key, not a public key: give the line of the .pub file (ssh-ed25519 AAAA… comment)"},
		{"private key with | for newlines", strings.ReplaceAll(privText, "\n", "|"), "line 1: a private key"},
		{"a private key's body line", good + "\n" + privBody, "line 3: not a public key: give the line of the .pub file"},
		{"allowed_signers line", "taskrunner " + edPub, "line 1: a name or options before the key: give the key alone (ssh-ed25519 AAAA… comment)"},
		{"options", `restrict,command="x" ` + edPub, "line 1: a name or options before the key"},
		{"type alone", "ssh-ed25519", "line 1: the ssh-ed25519 key is damaged: copy the whole line of the .pub file"},
		{"bad base64", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5!!!!", "line 1: the ssh-ed25519 key is damaged"},
		{"truncated", edPub[:len(edPub)-10], "line 1: the ssh-ed25519 key is damaged"},
		{"RSA key named ed25519", "ssh-ed25519 " + strings.Fields(rsaPub)[1], "line 1: the ssh-ed25519 key is damaged"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := ParseTrustedKeys(tt.text)
			if v != nil {
				t.Errorf("got a verifier")
			}
			// Only private key text counts as material here: public keys may be shown.
			material := ""
			if strings.Contains(tt.text, "PRIVATE KEY") || strings.Contains(tt.text, privBody) {
				material = privText
			}
			checkErrorLine(t, err, "TASKRUNNER_CACHE_TRUSTED_KEYS: ", tt.want, material)
		})
	}
}
