package sign

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
)

func TestMessage(t *testing.T) {
	sum := sha256.Sum256([]byte("hello\n"))
	got := string(Message("bundles/build-0123.tar.zst", sum))
	want := "taskrunner-cache v1\n" +
		"key bundles/build-0123.tar.zst\n" +
		"sha256 5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03\n"
	if got != want {
		t.Errorf("Message() = %q, want %q", got, want)
	}
}

func TestSignatureKey(t *testing.T) {
	if got, want := SignatureKey("latest/build-main.txt"), "latest/build-main.txt.sig"; got != want {
		t.Errorf("SignatureKey() = %q, want %q", got, want)
	}
}

func TestPublicKey(t *testing.T) {
	got := parseSigner(t, edKey).PublicKey()
	f := strings.Fields(got)
	if len(f) != 2 || f[0] != "ssh-ed25519" || !strings.HasPrefix(f[1], "AAAA") || got != f[0]+" "+f[1] {
		t.Errorf("PublicKey() = %q, want \"ssh-ed25519 AAAA…\" without a comment", got)
	}
}

func TestVerify(t *testing.T) {
	trusted, alsoTrusted, stranger := newEd25519(t), newEd25519(t), newEd25519(t)
	v, err := ParseTrustedKeys(authorizedKey(t, trusted) + " ci\n" + authorizedKey(t, alsoTrusted) + " laptop\n")
	if err != nil {
		t.Fatal(err)
	}
	const key = "bundles/build-0123abcd.tar.zst"
	sum := sha256.Sum256([]byte("the archive"))
	otherSum := sha256.Sum256([]byte("the archive, altered"))

	sign := func(k ed25519.PrivateKey, key string, sum [sha256.Size]byte) []byte {
		t.Helper()
		sig, err := parseSigner(t, k).Sign(key, sum)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	// sshsigOf signs any message with the trusted key, in any namespace.
	sshsigOf := func(msg []byte, h sshsig.HashAlgorithm, namespace string) []byte {
		t.Helper()
		signer, err := ssh.NewSignerFromKey(trusted)
		if err != nil {
			t.Fatal(err)
		}
		s, err := sshsig.Sign(bytes.NewReader(msg), signer, h, namespace)
		if err != nil {
			t.Fatal(err)
		}
		return sshsig.Armor(s)
	}
	good := sign(trusted, key, sum)
	strangerFingerprint := ssh.FingerprintSHA256(must(ssh.NewPublicKey(stranger.Public())))

	tests := []struct {
		name string
		key  string
		sum  [sha256.Size]byte
		sig  []byte
		want string // "" for a valid signature
	}{
		{"round trip", key, sum, good, ""},
		{"second trusted key", key, sum, sign(alsoTrusted, key, sum), ""},
		{"pointer", "latest/build-main.txt", sum, sign(trusted, "latest/build-main.txt", sum), ""},
		{"sha256 hash as ssh-keygen -O hashalg=sha256 makes", key, sum, sshsigOf(Message(key, sum), sshsig.HashSHA256, Namespace), ""},
		{"CRLF armor", key, sum, bytes.ReplaceAll(good, []byte("\n"), []byte("\r\n")), ""},
		{"altered object", key, otherSum, good, "signature does not match the object (altered, or moved from another key)"},
		{"moved to another key", "bundles/build-4567abcd.tar.zst", sum, good, "signature does not match the object"},
		{"moved to a pointer", "latest/build-main.txt", sum, good, "signature does not match the object"},
		{"signature over other bytes", key, sum, sshsigOf([]byte("hello\n"), sshsig.HashSHA512, Namespace), "signature does not match the object"},
		{"untrusted key", key, sum, sign(stranger, key, sum), "signed by an untrusted key " + strangerFingerprint + " (add its public key to TASKRUNNER_CACHE_TRUSTED_KEYS to trust it)"},
		{"wrong namespace", key, sum, sshsigOf(Message(key, sum), sshsig.HashSHA512, "git"), "wrong namespace (not taskrunner-cache)"},
		{"nil", key, sum, nil, "no signature"},
		{"empty", key, sum, []byte{}, "no signature"},
		{"white space", key, sum, []byte(" \n"), "no signature"},
		{"garbage", key, sum, []byte("not a signature\n"), "malformed signature (not an armored SSH signature)"},
		{"truncated", key, sum, good[:len(good)/2], "malformed signature"},
		{"text before", key, sum, append([]byte("hello\n"), good...), "malformed signature"},
		{"text after", key, sum, append(append([]byte{}, good...), "hello\n"...), "malformed signature"},
		{"two signatures", key, sum, append(append([]byte{}, good...), good...), "malformed signature"},
		{"other PEM block", key, sum, bytes.ReplaceAll(good, []byte("SSH SIGNATURE"), []byte("SSH SIGNATURF")), "malformed signature"},
		{"armored garbage", key, sum, pemBytes("SSH SIGNATURE", []byte("SSHSIG garbage")), "malformed signature"},
		{"too large", key, sum, append(bytes.Repeat([]byte(" "), MaxSignatureSize), good...), "malformed signature (larger than 16 KiB)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Verify(tt.key, tt.sum, tt.sig)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Verify() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrBadSignature) {
				t.Fatalf("Verify() = %v, want an error wrapping ErrBadSignature", err)
			}
			if want := "signature refused: " + tt.want; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Verify() = %q, want %q", err, want)
			}
		})
	}
}

func pemBytes(typ string, b []byte) []byte {
	return []byte(pemText(typ, b))
}

func TestSignIsAccepted(t *testing.T) {
	// The signer's own key, given as TASKRUNNER_CACHE_TRUSTED_KEYS, verifies
	// what it signs: the setup the README describes.
	s := parseSigner(t, edKey)
	v, err := ParseTrustedKeys(s.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if !v.Trusts(s.PublicKey()) {
		t.Error("a verifier made from the signer's public key does not trust it")
	}
	sum := sha256.Sum256(nil)
	sig, err := s.Sign("bundles/x.tar.zst", sum)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(sig, []byte("-----BEGIN SSH SIGNATURE-----\n")) || !bytes.HasSuffix(sig, []byte("-----END SSH SIGNATURE-----\n")) {
		t.Errorf("signature is not armored:\n%s", sig)
	}
	if len(sig) >= 1<<10 {
		t.Errorf("signature is %d bytes, want less than 1 KiB", len(sig))
	}
	if err := v.Verify("bundles/x.tar.zst", sum, sig); err != nil {
		t.Error(err)
	}
}

func BenchmarkSign(b *testing.B) {
	s, err := ParseSigningKey(openSSHText(b, edKey, ""))
	if err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256([]byte("archive"))
	for b.Loop() {
		if _, err := s.Sign("bundles/build-0123.tar.zst", sum); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	s, err := ParseSigningKey(openSSHText(b, edKey, ""))
	if err != nil {
		b.Fatal(err)
	}
	v, err := ParseTrustedKeys(s.PublicKey())
	if err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256([]byte("archive"))
	sig, err := s.Sign("bundles/build-0123.tar.zst", sum)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := v.Verify("bundles/build-0123.tar.zst", sum, sig); err != nil {
			b.Fatal(err)
		}
	}
}
