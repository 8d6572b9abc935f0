// Package cache is taskrunner's remote cache: the Store interface, its two
// implementations (an S3 bucket through the AWS SDK's S3 client, and a local
// folder of plain files) and Open, which picks one from the settings.
//
// The remote cache is an optimisation (SPEC §10): callers turn every error
// from a Store into a warn line and go on, so a Store must fail in seconds,
// never hang, and never put a credential in an error or a message.
package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Store is a remote cache: objects named by keys, below the store's prefix.
//
// A key is one or more non-empty segments joined by "/", relative to the
// prefix; no segment is "." or "..", and control characters are not allowed
// ("taskrunner/bundles/job-v1-<sha>.tar.zst", "latest/job-feature/x.txt").
// A key that breaks these rules makes every method fail with ErrInvalidKey.
//
// Every method may be called from several goroutines at once. Errors name the
// store and the key (Describe), wrap the cause for errors.Is and errors.As,
// and never contain a credential.
type Store interface {
	// Get opens the object at key for reading. The caller must Close it.
	// The object streams: memory use does not grow with its size. A missing
	// object is an error matching ErrNotFound; a missing bucket is not (it
	// matches ErrBucketNotFound), nor is any other failure. A transfer that
	// stalls fails from Read rather than hanging.
	Get(ctx context.Context, key string) (io.ReadCloser, error)

	// NewWriter starts writing the object at key, with the given content
	// type ("" means application/octet-stream). The data streams to the
	// store as it is written. The object appears, whole and replacing any
	// older one, only when Close returns nil: until then readers see the
	// old object or none. To abandon an upload, cancel ctx and then call
	// Close, which returns an error and leaves no new object behind. Close
	// must always be called.
	NewWriter(ctx context.Context, key, contentType string) (io.WriteCloser, error)

	// Exists reports whether an object is at key.
	Exists(ctx context.Context, key string) (bool, error)

	// Describe names the store for messages, e.g. "s3://bucket/prefix/" or
	// "file:///var/cache/taskrunner/", never with a credential.
	Describe() string

	// Close releases the store's resources. Readers and writers must be
	// closed first.
	Close() error
}

// ErrNotFound is the error, matched with errors.Is, of a Get for a key that
// holds no object.
var ErrNotFound = errors.New("not found")

// ErrBucketNotFound is the error, matched with errors.Is, of an operation on
// an S3 bucket that does not exist. It is not an ErrNotFound: a missing
// bucket is a setting to fix, not a cache miss.
var ErrBucketNotFound = errors.New("bucket does not exist")

// ErrInvalidKey is the error, matched with errors.Is, of an operation whose
// key breaks the rules of Store.
var ErrInvalidKey = errors.New("invalid cache key")

// checkKey returns an error matching ErrInvalidKey when key breaks the rules
// of Store. The rules keep both stores alike: a folder cannot hold "a//b",
// "a/" or "a/../b" as files of their own, S3 would take them as they are.
func checkKey(key string) error {
	bad := func(why string) error { return fmt.Errorf("%w %q: %s", ErrInvalidKey, key, why) }
	switch {
	case key == "":
		return bad("empty")
	case !utf8.ValidString(key):
		return bad("not UTF-8")
	case strings.IndexFunc(key, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
		return bad("control character")
	}
	for _, seg := range strings.Split(key, "/") {
		switch seg {
		case "":
			return bad("empty path segment")
		case ".", "..":
			return bad(`"." or ".." segment`)
		}
	}
	return nil
}
