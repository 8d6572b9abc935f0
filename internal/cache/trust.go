package cache

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/taskrunner/taskrunner/internal/cache/sign"
	"github.com/taskrunner/taskrunner/internal/config"
)

// Trust is what a build trusts and signs: nil fields mean no signing key and
// no trusted keys, the old tool's shared, unsigned cache.
type Trust struct {
	// Signer signs every archive and latest hash this build uploads.
	Signer *sign.Signer
	// Verifier, when set, refuses every archive and latest hash without a
	// valid signature by a trusted key; and without a Signer, this build
	// uploads nothing, so that it cannot replace a trusted object.
	Verifier *sign.Verifier
}

// LoadTrust parses TASKRUNNER_CACHE_SIGNING_KEY and
// TASKRUNNER_CACHE_TRUSTED_KEYS. An empty setting is off; a setting that
// is set but unusable is an error on one line that names it and holds no
// key material.
func LoadTrust(cfg config.Cache) (Trust, error) {
	var t Trust
	var err error
	if strings.TrimSpace(cfg.SigningKey) != "" {
		if t.Signer, err = sign.ParseSigningKey(cfg.SigningKey); err != nil {
			return Trust{}, err
		}
	}
	if strings.TrimSpace(cfg.TrustedKeys) != "" {
		if t.Verifier, err = sign.ParseTrustedKeys(cfg.TrustedKeys); err != nil {
			return Trust{}, err
		}
	}
	return t, nil
}

// relKey is key relative to the cache prefix: what a signature binds, so
// that a bucket can move under another prefix.
func (r *Remote) relKey(key string) string { return strings.TrimPrefix(key, r.prefix) }

// mayUpload reports whether this build may upload archives and latest
// hashes: not when it trusts keys but holds none to sign with.
func (r *Remote) mayUpload() bool {
	if r.trust.Verifier == nil || r.trust.Signer != nil {
		return true
	}
	r.unsignedOnce.Do(func() {
		r.report.Debug("remote cache: not uploading: TASKRUNNER_CACHE_TRUSTED_KEYS is set, and without TASKRUNNER_CACHE_SIGNING_KEY this build's uploads would not be trusted")
	})
	return false
}

// signature fetches the signature of the object at key when this build
// verifies signatures. It returns nil and true when the object has none;
// false when the store failed (already reported).
func (r *Remote) signature(ctx context.Context, store Store, key string) ([]byte, bool) {
	skey := sign.SignatureKey(key)
	body, err := store.Get(ctx, skey)
	if errors.Is(err, ErrNotFound) {
		return nil, true
	}
	if err != nil {
		r.fail(ctx, "reading "+skey, err)
		return nil, false
	}
	defer body.Close()
	sig, err := io.ReadAll(io.LimitReader(body, sign.MaxSignatureSize+1))
	if err != nil {
		r.fail(ctx, "reading "+skey, err)
		return nil, false
	}
	return sig, true
}

// errNoSignature is the refusal of an object that has no signature.
func errNoSignature(key string) error {
	return fmt.Errorf("%w: no signature (%s)", sign.ErrBadSignature, sign.SignatureKey(key))
}

// verify checks sig, the signature fetched for the object at key, against
// sum, the SHA-256 of the object's bytes.
func (r *Remote) verify(key string, sum []byte, sig []byte) error {
	var s [sha256.Size]byte
	copy(s[:], sum)
	return r.trust.Verifier.Verify(r.relKey(key), s, sig)
}

// untrusted reports an object refused for its signature: a miss, with one
// warn line.
func (r *Remote) untrusted(what, key string, err error) {
	r.report.Warn(fmt.Sprintf("remote cache: %s %s is not trusted, ignoring it: %v", what, key, err))
}

// sign uploads the signature of the object just uploaded at key, whose
// bytes hash to sum. It reports whether it did.
func (r *Remote) sign(ctx context.Context, key string, sum hash.Hash) bool {
	var s [sha256.Size]byte
	copy(s[:], sum.Sum(nil))
	r.signerOnce.Do(func() {
		if r.trust.Verifier != nil && !r.trust.Verifier.Trusts(r.trust.Signer.PublicKey()) {
			r.report.Warn("remote cache: the key of TASKRUNNER_CACHE_SIGNING_KEY is not among TASKRUNNER_CACHE_TRUSTED_KEYS: builds that trust only those keys will not restore what this build uploads; add its public key")
		}
	})
	sig, err := r.trust.Signer.Sign(r.relKey(key), s)
	if err != nil {
		r.report.Warn(fmt.Sprintf("remote cache: cannot sign %s: %v", key, err))
		return false
	}
	return r.put(ctx, sign.SignatureKey(key), "text/plain; charset=utf-8", strings.NewReader(string(sig)))
}
