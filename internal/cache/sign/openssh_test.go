package sign

import (
	"crypto/sha256"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// sshKeygen returns the path of ssh-keygen. Without it the interop tests
// fail on CI, where they must run, and are skipped elsewhere.
func sshKeygen(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("ssh-keygen")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("ssh-keygen is needed on CI to check signatures against OpenSSH: %v", err)
		}
		t.Skipf("ssh-keygen not found: %v", err)
	}
	return path
}

func run(t *testing.T, dir string, env []string, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// newOpenSSHKey makes an unencrypted ed25519 key with ssh-keygen in dir and
// returns the private key's text and the public key's line.
func newOpenSSHKey(t *testing.T, keygen, dir, name string) (priv, pub string) {
	t.Helper()
	if out, err := run(t, dir, nil, keygen, "-q", "-t", "ed25519", "-N", "", "-C", "ci@example", "-f", name); err != nil {
		t.Fatalf("ssh-keygen -t ed25519: %v\n%s", err, out)
	}
	return readFile(t, filepath.Join(dir, name)), strings.TrimSpace(readFile(t, filepath.Join(dir, name+".pub")))
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// byHand is the verification the package documentation gives, run as a
// person would run it in the folder of the downloaded object.
const byHand = `printf 'taskrunner-cache v1\nkey %s\nsha256 %s\n' "$key" "$(sha256sum < file | cut -d' ' -f1)" \
  | ssh-keygen -Y verify -f allowed_signers -I taskrunner -n taskrunner-cache -s file.sig`

func TestOpenSSHVerifiesOurSignatures(t *testing.T) {
	keygen := sshKeygen(t)
	dir := t.TempDir()
	privText, pub := newOpenSSHKey(t, keygen, dir, "cache-key")

	for name, text := range map[string]string{
		"as written":     privText,
		"| for newlines": strings.ReplaceAll(strings.TrimSpace(privText), "\n", "|"),
	} {
		t.Run(name, func(t *testing.T) {
			s, err := ParseSigningKey(text)
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.Join(strings.Fields(pub)[:2], " "); s.PublicKey() != want {
				t.Fatalf("PublicKey() = %q, want %q from the .pub file", s.PublicKey(), want)
			}

			const key = "bundles/build-0123456789abcdef.tar.zst"
			object := "an archive\x00with any bytes\n"
			sig, err := s.Sign(key, sha256.Sum256([]byte(object)))
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "file"), object)
			writeFile(t, filepath.Join(dir, "file.sig"), string(sig))
			writeFile(t, filepath.Join(dir, "allowed_signers"), "taskrunner "+pub+"\n")

			out, err := run(t, dir, []string{"key=" + key}, "sh", "-c", byHand)
			if err != nil {
				t.Fatalf("ssh-keygen -Y verify refused our signature: %v\n%s", err, out)
			}
			if !strings.Contains(out, `Good "taskrunner-cache" signature for taskrunner with ED25519 key`) {
				t.Errorf("ssh-keygen -Y verify said:\n%s", out)
			}

			// The same check refuses the object under another key, or altered.
			if out, err := run(t, dir, []string{"key=bundles/build-other.tar.zst"}, "sh", "-c", byHand); err == nil {
				t.Errorf("ssh-keygen -Y verify accepted the object under another key:\n%s", out)
			}
			writeFile(t, filepath.Join(dir, "file"), object+"x")
			if out, err := run(t, dir, []string{"key=" + key}, "sh", "-c", byHand); err == nil {
				t.Errorf("ssh-keygen -Y verify accepted an altered object:\n%s", out)
			}
		})
	}
}

func TestWeVerifyOpenSSHSignatures(t *testing.T) {
	keygen := sshKeygen(t)
	dir := t.TempDir()
	_, pub := newOpenSSHKey(t, keygen, dir, "cache-key")
	v, err := ParseTrustedKeys("# made by ssh-keygen\n" + pub + "\n")
	if err != nil {
		t.Fatal(err)
	}

	const key = "latest/build-main.txt"
	sum := sha256.Sum256([]byte("0123456789abcdef\n"))
	writeFile(t, filepath.Join(dir, "message"), string(Message(key, sum)))
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"default sha512", nil},
		{"sha256", []string{"-O", "hashalg=sha256"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			removeSig(t, dir)
			args := append([]string{"-Y", "sign", "-f", "cache-key", "-n", Namespace}, tt.args...)
			if out, err := run(t, dir, nil, keygen, append(args, "message")...); err != nil {
				t.Fatalf("ssh-keygen -Y sign: %v\n%s", err, out)
			}
			sig := []byte(readFile(t, filepath.Join(dir, "message.sig")))
			if err := v.Verify(key, sum, sig); err != nil {
				t.Errorf("Verify() of ssh-keygen's signature: %v", err)
			}
			if err := v.Verify("latest/build-other.txt", sum, sig); !errors.Is(err, ErrBadSignature) {
				t.Errorf("Verify() under another key = %v, want ErrBadSignature", err)
			}
		})
	}

	t.Run("other namespace", func(t *testing.T) {
		removeSig(t, dir)
		if out, err := run(t, dir, nil, keygen, "-Y", "sign", "-f", "cache-key", "-n", "file", "-O", "hashalg=sha512", "message"); err != nil {
			t.Fatalf("ssh-keygen -Y sign: %v\n%s", err, out)
		}
		sig := []byte(readFile(t, filepath.Join(dir, "message.sig")))
		if err := v.Verify(key, sum, sig); err == nil || !strings.Contains(err.Error(), "wrong namespace") {
			t.Errorf("Verify() of a signature in namespace file = %v, want wrong namespace", err)
		}
	})
}

// removeSig removes message.sig: ssh-keygen -Y sign asks before replacing it.
func removeSig(t *testing.T, dir string) {
	t.Helper()
	if err := os.Remove(filepath.Join(dir, "message.sig")); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
}

func TestParseSigningKeyFromOpenSSH(t *testing.T) {
	// Keys as ssh-keygen writes them, refused with what to do.
	keygen := sshKeygen(t)
	dir := t.TempDir()
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"encrypted", []string{"-t", "ed25519", "-N", "a passphrase"}, `store it unencrypted (ssh-keygen -p -N "" -f FILE removes the passphrase)`},
		{"RSA", []string{"-t", "rsa", "-b", "2048", "-N", ""}, "an RSA key (ssh-rsa): cache signatures need an ed25519 key"},
		{"ECDSA", []string{"-t", "ecdsa", "-N", ""}, "an ECDSA key (ecdsa-sha2-nistp256): cache signatures need an ed25519 key"},
		{"PEM RSA", []string{"-t", "rsa", "-b", "2048", "-m", "PEM", "-N", ""}, "an RSA key in PEM format"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			if out, err := run(t, dir, nil, keygen, append(append([]string{"-q"}, tt.args...), "-f", file)...); err != nil {
				t.Fatalf("ssh-keygen: %v\n%s", err, out)
			}
			text := readFile(t, file)
			_, err := ParseSigningKey(text)
			checkErrorLine(t, err, "TASKRUNNER_CACHE_SIGNING_KEY: ", tt.want, text)

			_, err = ParseTrustedKeys(readFile(t, file+".pub"))
			if tt.name != "encrypted" {
				checkErrorLine(t, err, "TASKRUNNER_CACHE_TRUSTED_KEYS: line 1: ", "cache signatures are made with ed25519 keys only", "")
			} else if err != nil {
				t.Errorf("ParseTrustedKeys() of the public half of an encrypted ed25519 key: %v", err)
			}
		})
	}
}
