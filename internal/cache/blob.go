package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// blobStore is a Store over a gocloud.dev/blob bucket: both the S3 store
// and the folder store are one, with a few hooks for what differs.
type blobStore struct {
	bucket *blob.Bucket // already narrowed to the prefix
	// base + key names an object in messages ("s3://bucket/prefix/key");
	// at follows it, saying where the store is when base does not (" at
	// http://host:port" for an S3-compatible server).
	base, at string

	// checkKey adds the implementation's own key rules to the common ones;
	// nil when there are none.
	checkKey func(key string) error
	// explain turns a driver error into a shorter or clearer one that wraps
	// it (a missing bucket, a refused connection); nil when it has nothing
	// better than gocloud's message.
	explain func(err error) error
	// bucketExists is asked when Exists finds nothing, because an S3 HEAD
	// answers a bare 404 for a missing bucket as for a missing key. It is
	// nil for the folder store.
	bucketExists func(ctx context.Context) (bool, error)
	// writerOptions adds the implementation's own options to a writer's;
	// nil when it has none.
	writerOptions func(*blob.WriterOptions)
}

var _ Store = (*blobStore)(nil)

func (s *blobStore) Describe() string { return s.base + s.at }

func (s *blobStore) Close() error {
	if err := s.bucket.Close(); err != nil {
		return fmt.Errorf("close %s: %w", s.Describe(), err)
	}
	return nil
}

// where names an object in messages.
func (s *blobStore) where(key string) string { return s.base + key + s.at }

func (s *blobStore) validKey(key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if s.checkKey != nil {
		return s.checkKey(key)
	}
	return nil
}

// fail wraps err from op on key into the error a caller sees.
func (s *blobStore) fail(op, key string, err error) error {
	if s.explain != nil {
		if e := s.explain(err); e != nil {
			err = e
		}
	}
	return fmt.Errorf("%s %s: %w", op, s.where(key), err)
}

func (s *blobStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := s.validKey(key); err != nil {
		return nil, err
	}
	r, err := s.bucket.NewReader(ctx, key, nil)
	if err != nil {
		if s.notFound(err) {
			return nil, fmt.Errorf("get %s: %w", s.where(key), ErrNotFound)
		}
		return nil, s.fail("get", key, err)
	}
	return &reader{r: r, s: s, key: key}, nil
}

// notFound reports whether err says no object is at a key, and not that
// the bucket is missing.
func (s *blobStore) notFound(err error) bool {
	if s.explain != nil && errors.Is(s.explain(err), ErrBucketNotFound) {
		return false
	}
	// fileblob passes on ENOTDIR for "a/b" when "a" is an object.
	return gcerrors.Code(err) == gcerrors.NotFound || errors.Is(err, syscall.ENOTDIR)
}

func (s *blobStore) NewWriter(ctx context.Context, key, contentType string) (io.WriteCloser, error) {
	if err := s.validKey(key); err != nil {
		return nil, err
	}
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	opts := &blob.WriterOptions{ContentType: contentType}
	if s.writerOptions != nil {
		s.writerOptions(opts)
	}
	w, err := s.bucket.NewWriter(ctx, key, opts)
	if err != nil {
		return nil, s.fail("put", key, err)
	}
	return &writer{w: w, s: s, key: key}, nil
}

func (s *blobStore) Exists(ctx context.Context, key string) (bool, error) {
	if err := s.validKey(key); err != nil {
		return false, err
	}
	_, err := s.bucket.Attributes(ctx, key)
	if err == nil {
		return true, nil
	}
	if !s.notFound(err) {
		return false, s.fail("check", key, err)
	}
	if s.bucketExists != nil {
		there, err := s.bucketExists(ctx)
		if err != nil {
			return false, s.fail("check", key, err)
		}
		if !there {
			return false, s.fail("check", key, ErrBucketNotFound)
		}
	}
	return false, nil
}

// contentType returns the content type stored with the object at key; the
// shared tests use it.
func (s *blobStore) contentType(ctx context.Context, key string) (string, error) {
	a, err := s.bucket.Attributes(ctx, key)
	if err != nil {
		return "", s.fail("check", key, err)
	}
	return a.ContentType, nil
}

// shortError replaces the message of err, keeping err for errors.Is and
// errors.As: gocloud and the AWS SDK pile up layers ("blob (key …)
// (code=Unknown): operation error S3: GetObject, https response error
// StatusCode: 0, RequestID: , …") that a warn line can do without.
type shortError struct {
	msg string
	err error
}

func (e *shortError) Error() string { return e.msg }
func (e *shortError) Unwrap() error { return e.err }

// reader names the object in its errors.
type reader struct {
	r   *blob.Reader
	s   *blobStore
	key string
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		err = r.s.fail("read", r.key, err)
	}
	return n, err
}

func (r *reader) Close() error {
	if err := r.r.Close(); err != nil {
		return r.s.fail("read", r.key, err)
	}
	return nil
}

// writer names the object in its errors.
type writer struct {
	w   *blob.Writer
	s   *blobStore
	key string
}

func (w *writer) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if err != nil {
		err = w.s.fail("put", w.key, err)
	}
	return n, err
}

func (w *writer) Close() error {
	if err := w.w.Close(); err != nil {
		return w.s.fail("put", w.key, err)
	}
	return nil
}
