package cache

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/taskrunner/taskrunner/internal/cache/archive"
)

// Reporter receives the remote cache's messages for a job.
type Reporter interface {
	Info(msg string)
	Warn(msg string)
	Debug(msg string)
}

// Remote is the remote cache as one taskrunner process uses it: archives of
// task outputs, the latest hash built on each branch, and task logs, with
// the key names of SPEC §10 (shared with the old tool):
//
//	{prefix}bundles/{job}[-{version}]-{hash}.tar.zst
//	{prefix}latest/{job}-{branch}.txt
//	{logs-prefix}{build-id}/{job}.log.txt
//
// The remote cache never breaks a build: every failure is a miss or a
// skipped upload. The first failure of the store is a warn line, and the
// process then leaves the store alone, so a dead endpoint costs its
// timeouts once.
type Remote struct {
	// store is the store; open, when set, opens it on first use.
	store       Store
	open        func(context.Context) (Store, error)
	openOnce    sync.Once
	openErr     error
	prefix      string
	logsPrefix  string
	logsViewURL string
	report      Reporter
	trust       Trust

	broken       atomic.Bool
	unsignedOnce sync.Once
	signerOnce   sync.Once
	warnOnce     sync.Once
	cancelOnce   sync.Once
	// moved counts the bytes of archives downloaded and uploaded.
	moved atomic.Int64
	// progressEvery is the period of progress lines in long transfers.
	progressEvery time.Duration
}

// NewRemote returns the remote cache over store. prefix is where archives
// and latest hashes live; logsPrefix and logsViewURL place the logs.
func NewRemote(store Store, prefix, logsPrefix, logsViewURL string, report Reporter) *Remote {
	return &Remote{store: store, prefix: prefix, logsPrefix: logsPrefix, logsViewURL: logsViewURL,
		report: report, progressEvery: 5 * time.Second}
}

// SetTrust makes r sign what it uploads and verify what it restores, as t
// says. Call it before any other method.
func (r *Remote) SetTrust(t Trust) { r.trust = t }

// NewLazyRemote is NewRemote for a store that open opens on first use (see
// Locate); a store that cannot be opened is a failure of the store.
func NewLazyRemote(open func(context.Context) (Store, error), prefix, logsPrefix, logsViewURL string, report Reporter) *Remote {
	r := NewRemote(nil, prefix, logsPrefix, logsViewURL, report)
	r.open = open
	return r
}

// get returns the store, opening it on first use, or nil when it cannot be
// used.
func (r *Remote) get(ctx context.Context) Store {
	r.openOnce.Do(func() {
		if r.store == nil && r.open != nil {
			r.store, r.openErr = r.open(ctx)
		}
	})
	if r.openErr != nil {
		r.fail(ctx, "opening the store", r.openErr)
		return nil
	}
	return r.store
}

// Transferred returns the bytes of archives moved so far, both ways.
func (r *Remote) Transferred() int64 { return r.moved.Load() }

// Archive names the archive of a job's outputs for an input hash.
func (r *Remote) Archive(job, version, hash string) string {
	name := job
	if version != "" {
		name += "-" + version
	}
	return r.prefix + "bundles/" + name + "-" + hash + ".tar.zst"
}

func (r *Remote) latestKey(job, branch string) string {
	return r.prefix + "latest/" + job + "-" + branch + ".txt"
}

// usable reports whether the store may still be used by this process.
func (r *Remote) usable() bool { return !r.broken.Load() }

// fail reports the store's first failure and stops using it. An operation
// that failed because ctx was cancelled (by a stop signal) is no failure
// of the store: it is reported once, as cancelled, and changes nothing.
func (r *Remote) fail(ctx context.Context, what string, err error) {
	if ctx.Err() != nil {
		r.cancelOnce.Do(func() {
			r.report.Warn(fmt.Sprintf("remote cache: %s was cancelled", what))
		})
		return
	}
	r.broken.Store(true)
	r.warnOnce.Do(func() {
		r.report.Warn(fmt.Sprintf("remote cache: %s failed: %v; going on without the remote cache", what, err))
	})
}

// Restore puts the outputs held by archive in place under root, where paths
// are the task's outputs relative to root, and reports whether it did.
// found, if not nil, is called once the archive is known to exist. A
// missing archive is a miss; an unusable one (corrupt, truncated, unsafe,
// over a limit, or without a trusted signature when r verifies them) is a
// miss with a warn line, and leaves the outputs as they were.
func (r *Remote) Restore(ctx context.Context, key, root string, paths []string, found func()) bool {
	if !r.usable() {
		return false
	}
	store := r.get(ctx)
	if store == nil {
		return false
	}
	body, err := store.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		r.report.Debug("remote cache: no archive " + key)
		return false
	}
	if err != nil && ctx.Err() != nil {
		r.report.Warn(fmt.Sprintf("remote cache: restoring %s was cancelled; the outputs are as they were", key))
		return false
	}
	if err != nil {
		r.fail(ctx, "reading "+key, err)
		return false
	}
	defer body.Close()
	if found != nil {
		found()
	}
	var sig []byte
	if r.trust.Verifier != nil {
		var ok bool
		if sig, ok = r.signature(ctx, store, key); !ok {
			return false
		}
		if sig == nil {
			// Refused before a byte of the archive is read.
			r.untrusted("archive", key, errNoSignature(key))
			return false
		}
	}
	t := r.track("Downloading", key)
	src := &watchedReader{r: body}
	sum := sha256.New()
	in := io.TeeReader(t.reader(src), sum)
	opt := archive.RestoreOptions{}
	var refused error // the signature's refusal, as Verify gave it
	if r.trust.Verifier != nil {
		// The signature covers every byte of the object, so read what the
		// archive reader left (padding after the end of the tar) first.
		opt.Verify = func() error {
			if _, err := io.Copy(io.Discard, in); err != nil {
				return err
			}
			refused = r.verify(key, sum.Sum(nil), sig)
			return refused
		}
	}
	stats, err := archive.Restore(ctx, in, root, paths, opt)
	t.done(err == nil)
	if err != nil {
		var (
			unsafe *archive.UnsafeEntryError
			limit  *archive.LimitError
		)
		switch {
		case refused != nil:
			r.untrusted("archive", key, refused)
		case ctx.Err() != nil || errors.Is(err, context.Canceled):
			r.report.Warn(fmt.Sprintf("remote cache: restoring %s was cancelled; the outputs are as they were", key))
		case errors.Is(err, archive.ErrCorrupt) || errors.As(err, &unsafe) || errors.As(err, &limit):
			r.report.Warn(fmt.Sprintf("remote cache: archive %s is unusable, ignoring it: %v", key, err))
		case src.failed() == nil:
			// Not the store: the cache root could not be written.
			r.report.Warn(fmt.Sprintf("remote cache: cannot restore %s into %s: %v", key, root, err))
		default:
			r.fail(ctx, "restoring "+key, err)
		}
		return false
	}
	r.report.Debug(fmt.Sprintf("remote cache: restored %d files (%d bytes) into %s", stats.Files, stats.Bytes, root))
	return true
}

// Save uploads an archive of paths, relative to root, as key. It reports
// whether the archive was stored.
func (r *Remote) Save(ctx context.Context, key, root string, paths []string) bool {
	if !r.mayUpload() {
		return false
	}
	upload, cancel := context.WithCancel(ctx)
	defer cancel()
	w, ok := r.writer(upload, key, "application/zstd")
	if !ok {
		return false
	}
	t := r.track("Uploading", key)
	dst := &watchedWriter{w: w}
	sum := sha256.New()
	_, err := archive.Write(upload, io.MultiWriter(t.writer(dst), sum), root, paths, archive.WriteOptions{})
	if err != nil {
		cancel() // abandon the upload: no partial archive appears
	}
	cerr := w.Close()
	t.done(err == nil && cerr == nil)
	switch {
	case err != nil && dst.failed() == nil && ctx.Err() == nil:
		// Not the store: the outputs could not be archived (missing, a
		// link Restore would refuse, changed while archiving). The store
		// stays in use, for the log and other tasks.
		r.report.Warn(fmt.Sprintf("remote cache: cannot archive the outputs: %v", err))
		return false
	case err != nil:
		r.fail(ctx, "uploading "+key, err)
		return false
	case cerr != nil:
		r.fail(ctx, "uploading "+key, cerr)
		return false
	}
	if r.trust.Signer != nil {
		return r.sign(ctx, key, sum)
	}
	return true
}

// firstError keeps the first error it is given. The archive's zstd coder
// reads and writes from goroutines of its own, so it is safe for
// concurrent use.
type firstError struct {
	mu  sync.Mutex
	err error
}

func (f *firstError) keep(err error) {
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.mu.Unlock()
}

func (f *firstError) failed() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// watchedReader remembers the error of the store's reader, to tell a
// failure of the store from a failure to write the files it holds.
type watchedReader struct {
	r io.Reader
	firstError
}

func (w *watchedReader) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if err != nil && err != io.EOF {
		w.keep(err)
	}
	return n, err
}

// watchedWriter remembers the error of the store's writer, to tell a
// failure of the store from a failure to read the outputs.
type watchedWriter struct {
	w io.Writer
	firstError
}

func (w *watchedWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if err != nil {
		w.keep(err)
	}
	return n, err
}

// LatestHash returns the newest hash of job built on branch.
func (r *Remote) LatestHash(ctx context.Context, job, branch string) (string, bool) {
	if !r.usable() {
		return "", false
	}
	key := r.latestKey(job, branch)
	store := r.get(ctx)
	if store == nil {
		return "", false
	}
	body, err := store.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		r.report.Debug("remote cache: no latest hash " + key)
		return "", false
	}
	if err != nil {
		r.fail(ctx, "reading "+key, err)
		return "", false
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, 4096))
	if err != nil {
		r.fail(ctx, "reading "+key, err)
		return "", false
	}
	if r.trust.Verifier != nil {
		sig, ok := r.signature(ctx, store, key)
		if !ok {
			return "", false
		}
		sum := sha256.Sum256(b)
		err := errNoSignature(key)
		if sig != nil {
			err = r.verify(key, sum[:], sig)
		}
		if err != nil {
			r.untrusted("latest hash", key, err)
			return "", false
		}
	}
	hash := strings.TrimSpace(string(b))
	return hash, hash != ""
}

// SetLatest records hash as the newest build of job on branch.
func (r *Remote) SetLatest(ctx context.Context, job, branch, hash string) {
	if !r.mayUpload() {
		return
	}
	key := r.latestKey(job, branch)
	if !r.put(ctx, key, "text/plain; charset=utf-8", strings.NewReader(hash)) || r.trust.Signer == nil {
		return
	}
	sum := sha256.New()
	sum.Write([]byte(hash))
	r.sign(ctx, key, sum)
}

// UploadLog uploads a job's log file and returns the URL to view it, or ""
// when it could not be uploaded or no view URL is set.
func (r *Remote) UploadLog(ctx context.Context, buildID, job, path string) string {
	f, err := os.Open(path)
	if err != nil {
		r.report.Warn(fmt.Sprintf("cannot upload the log: %v", err))
		return ""
	}
	defer f.Close()
	name := buildID + "/" + job + ".log.txt"
	if !r.put(ctx, r.logsPrefix+name, "text/plain; charset=utf-8", f) {
		return ""
	}
	if r.logsViewURL == "" {
		return ""
	}
	return r.logsViewURL + name
}

// writer starts the upload of key; false when the store is not usable or
// refused it (already reported). Cancelling ctx abandons the upload.
func (r *Remote) writer(ctx context.Context, key, contentType string) (io.WriteCloser, bool) {
	if !r.usable() {
		return nil, false
	}
	store := r.get(ctx)
	if store == nil {
		return nil, false
	}
	w, err := store.NewWriter(ctx, key, contentType)
	if err != nil {
		r.fail(ctx, "uploading "+key, err)
		return nil, false
	}
	return w, true
}

func (r *Remote) put(ctx context.Context, key, contentType string, body io.Reader) bool {
	upload, cancel := context.WithCancel(ctx)
	defer cancel()
	w, ok := r.writer(upload, key, contentType)
	if !ok {
		return false
	}
	if _, err := io.Copy(w, body); err != nil {
		cancel()
		w.Close()
		r.fail(ctx, "uploading "+key, err)
		return false
	}
	if err := w.Close(); err != nil {
		r.fail(ctx, "uploading "+key, err)
		return false
	}
	return true
}
