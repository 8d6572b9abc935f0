package cache

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/taskrunner/taskrunner/internal/cache/sign"
	"github.com/taskrunner/taskrunner/internal/config"
)

// newKey returns a new ed25519 key as its private key text and its public
// key line, as ssh-keygen writes them.
func newKey(t *testing.T) (private, public string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "test")
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(block)), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))) + " test"
}

// trusted returns a Remote over the folder store dir that signs with
// signing (if not "") and trusts the keys in trusted (if not "").
func trusted(t *testing.T, dir, signing, trustedKeys string, rep *lines) *Remote {
	t.Helper()
	trust, err := LoadTrust(config.Cache{SigningKey: signing, TrustedKeys: trustedKeys})
	if err != nil {
		t.Fatal(err)
	}
	r := NewRemote(openTestFolder(t, dir), "taskrunner/", "logs/", "", rep)
	r.SetTrust(trust)
	return r
}

// TestRemoteSigned: what a signing build uploads, a trusting build
// restores; altered, moved, unsigned or foreign objects are misses with
// one warn line each, and leave the outputs as they were.
func TestRemoteSigned(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	priv, pub := newKey(t)
	otherPriv, _ := newKey(t)
	src := outputs(t)
	key := "taskrunner/bundles/job-abc.tar.zst"

	signer := trusted(t, dir, priv, pub, &lines{})
	if !signer.Save(ctx, key, src, []string{"out"}) {
		t.Fatal("signed Save failed")
	}
	signer.SetLatest(ctx, "job", "main", "abc")
	for _, k := range []string{key, "taskrunner/latest/job-main.txt"} {
		if _, err := os.Stat(filepath.Join(dir, sign.SignatureKey(k))); err != nil {
			t.Errorf("no signature beside %s: %v", k, err)
		}
	}

	// restore tries a restore into a cache root holding out/mine.txt, and
	// reports whether it restored and whether mine.txt is still there.
	restore := func(t *testing.T, r *Remote, key string) (restored, kept bool) {
		t.Helper()
		root := t.TempDir()
		if err := os.MkdirAll(filepath.Join(root, "out"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "out", "mine.txt"), []byte("mine"), 0o644); err != nil {
			t.Fatal(err)
		}
		restored = r.Restore(ctx, key, root, []string{"out"}, nil)
		_, err := os.Stat(filepath.Join(root, "out", "mine.txt"))
		return restored, err == nil
	}

	rep := &lines{}
	reader := trusted(t, dir, "", pub, rep)
	if ok, kept := restore(t, reader, key); !ok || kept {
		t.Fatalf("a signed archive was not restored (restored %v, old output kept %v): %q", ok, kept, rep.get("warn"))
	}
	if hash, ok := reader.LatestHash(ctx, "job", "main"); !ok || hash != "abc" {
		t.Errorf("signed latest hash: %q, %v; warns %q", hash, ok, rep.get("warn"))
	}

	copyObject := func(from, to string) {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, from))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, to)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, to), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	other := trusted(t, dir, otherPriv, "", &lines{})
	unsigned := trusted(t, dir, "", "", &lines{})
	cases := []struct {
		name  string
		setup func() string // returns the key to restore
		want  string        // in the warn line
	}{
		{"moved", func() string {
			copyObject(key, "taskrunner/bundles/job-def.tar.zst")
			copyObject(key+".sig", "taskrunner/bundles/job-def.tar.zst.sig")
			return "taskrunner/bundles/job-def.tar.zst"
		}, "does not match the object"},
		{"altered", func() string {
			// Other bytes, a whole and valid archive, at key, beside key's
			// signature (a build without the key does not touch it).
			other := outputs(t)
			os.WriteFile(filepath.Join(other, "out", "a.txt"), []byte("altered\n"), 0o644)
			if !unsigned.Save(ctx, key, other, []string{"out"}) {
				t.Fatal("Save failed")
			}
			return key
		}, "does not match the object"},
		{"unsigned", func() string {
			if !unsigned.Save(ctx, "taskrunner/bundles/job-jkl.tar.zst", outputs(t), []string{"out"}) {
				t.Fatal("Save failed")
			}
			return "taskrunner/bundles/job-jkl.tar.zst"
		}, "no signature (taskrunner/bundles/job-jkl.tar.zst.sig)"},
		{"another key", func() string {
			if !other.Save(ctx, "taskrunner/bundles/job-mno.tar.zst", outputs(t), []string{"out"}) {
				t.Fatal("Save failed")
			}
			return "taskrunner/bundles/job-mno.tar.zst"
		}, "signed by an untrusted key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := tc.setup()
			rep := &lines{}
			r := trusted(t, dir, "", pub, rep)
			if ok, kept := restore(t, r, k); ok || !kept {
				t.Errorf("restored %v, old output kept %v; want a miss that keeps it", ok, kept)
			}
			warns := rep.get("warn")
			if len(warns) != 1 || !strings.Contains(warns[0], "is not trusted, ignoring it") || !strings.Contains(warns[0], tc.want) {
				t.Errorf("warn lines %q, want one saying %q", warns, tc.want)
			}
		})
	}

	t.Run("hijacked pointer", func(t *testing.T) {
		unsigned.SetLatest(ctx, "job", "main", "def")
		rep := &lines{}
		r := trusted(t, dir, "", pub, rep)
		if hash, ok := r.LatestHash(ctx, "job", "main"); ok {
			t.Errorf("a pointer rewritten without the key gave %q", hash)
		}
		if w := rep.get("warn"); len(w) != 1 || !strings.Contains(w[0], "latest hash taskrunner/latest/job-main.txt is not trusted") {
			t.Errorf("warn lines %q", w)
		}
	})
}

// TestRemoteTrustedOnlyUploadsNothing: a build that trusts keys but holds
// none to sign with uploads no archive and no latest hash, with one debug
// line, so that it cannot replace a trusted object; its logs still go up.
func TestRemoteTrustedOnlyUploadsNothing(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	_, pub := newKey(t)
	rep := &lines{}
	r := trusted(t, dir, "", pub, rep)
	root := outputs(t)
	if r.Save(ctx, "taskrunner/bundles/job-abc.tar.zst", root, []string{"out"}) {
		t.Error("Save reported an upload")
	}
	r.SetLatest(ctx, "job", "main", "abc")
	if got := rep.get("debug"); len(got) != 1 || !strings.Contains(got[0], "not uploading") {
		t.Errorf("debug lines %q, want one saying it does not upload", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "taskrunner")); !os.IsNotExist(err) {
		t.Errorf("something was uploaded: %v", err)
	}
	r.UploadLog(ctx, "build", "job", filepath.Join(root, "out", "a.txt"))
	if _, err := os.Stat(filepath.Join(dir, "logs", "build", "job.log.txt")); err != nil {
		t.Errorf("the log was not uploaded: %v", err)
	}
}

// TestLoadTrust: unset or blank settings are off; bad ones are errors that
// name the setting and hold no key material.
func TestLoadTrust(t *testing.T) {
	priv, pub := newKey(t)
	if tr, err := LoadTrust(config.Cache{SigningKey: " \n", TrustedKeys: ""}); err != nil || tr.Signer != nil || tr.Verifier != nil {
		t.Errorf("blank settings: %+v, %v", tr, err)
	}
	if tr, err := LoadTrust(config.Cache{SigningKey: priv, TrustedKeys: pub}); err != nil || tr.Signer == nil || tr.Verifier == nil {
		t.Errorf("good settings: %+v, %v", tr, err)
	}
	for _, c := range []config.Cache{{SigningKey: priv[:len(priv)/2]}, {TrustedKeys: priv}, {SigningKey: pub}} {
		_, err := LoadTrust(c)
		if err == nil {
			t.Errorf("%+v: no error", c)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "TASKRUNNER_CACHE_") || strings.Contains(msg, "\n") {
			t.Errorf("error %q does not name the setting on one line", msg)
		}
		body := strings.Split(priv, "\n")[1]
		if strings.Contains(msg, body[:16]) {
			t.Errorf("error %q shows the private key", msg)
		}
	}
}

// TestRemoteSignerNotTrusted: a build whose signing key is not among its
// trusted keys uploads what those who trust the same keys will refuse; it
// says so once, and still uploads.
func TestRemoteSignerNotTrusted(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	priv, pub := newKey(t)
	_, otherPub := newKey(t)
	root := outputs(t)

	rep := &lines{}
	r := trusted(t, dir, priv, otherPub, rep)
	for _, k := range []string{"taskrunner/bundles/job-a.tar.zst", "taskrunner/bundles/job-b.tar.zst"} {
		if !r.Save(ctx, k, root, []string{"out"}) {
			t.Fatalf("Save %s failed", k)
		}
	}
	if w := rep.get("warn"); len(w) != 1 || !strings.Contains(w[0], "TASKRUNNER_CACHE_SIGNING_KEY is not among TASKRUNNER_CACHE_TRUSTED_KEYS") {
		t.Errorf("warn lines %q, want one about the signing key", w)
	}

	rep = &lines{}
	r = trusted(t, dir, priv, pub, rep)
	if !r.Save(ctx, "taskrunner/bundles/job-c.tar.zst", root, []string{"out"}) {
		t.Fatal("Save failed")
	}
	if w := rep.get("warn"); len(w) != 0 {
		t.Errorf("a trusted signing key gave warn lines %q", w)
	}
}
