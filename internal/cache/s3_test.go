package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/taskrunner/taskrunner/internal/cache/s3test"
	"github.com/taskrunner/taskrunner/internal/config"
)

// fakeSecret stands in for a secret key in the tests without a real server;
// no error or message may contain it.
const fakeSecret = "fake-secret-must-not-leak-0123456789"

// testLimits keep the fault tests fast.
var testLimits = limits{
	connect:    time.Second,
	header:     5 * time.Second,
	idle:       500 * time.Millisecond,
	attempts:   3,
	maxBackoff: 50 * time.Millisecond,
}

// s3URL is the TASKRUNNER_REMOTE_CACHE_URL for env with the given prefix.
func s3URL(env s3test.Env, prefix string) string {
	q := url.Values{"endpoint": {env.Endpoint}, "region": {env.Region}}
	return "s3://" + env.Bucket + "/" + prefix + "?" + q.Encode()
}

func openS3Env(t *testing.T, env s3test.Env, lim limits) Store {
	t.Helper()
	s, err := open(context.Background(), config.Cache{
		URL:       s3URL(env, "taskrunner/"),
		AccessKey: env.AccessKey,
		SecretKey: env.SecretKey,
	}, lim)
	if err != nil {
		t.Fatal(err)
	}
	noSecret(t, s.Describe(), env.SecretKey)
	return s
}

// noSecret fails the test if msg shows a secret.
func noSecret(t *testing.T, msg string, secrets ...string) {
	t.Helper()
	for _, s := range append(secrets, fakeSecret) {
		if s != "" && strings.Contains(msg, s) {
			t.Errorf("message shows a secret key: %s", msg)
		}
	}
}

func TestS3Store(t *testing.T) {
	runStoreSuite(t, func(t *testing.T) Store {
		return openS3Env(t, s3test.Bucket(t), defaultLimits)
	})
}

// TestS3Layout checks where objects land in the bucket, for the URL and the
// legacy settings (SPEC §10 keys are {prefix}bundles/…).
func TestS3Layout(t *testing.T) {
	env := s3test.Bucket(t)
	ctx := context.Background()
	for _, tc := range []struct {
		cfg  config.Cache
		want string // the S3 key of "latest/job-main.txt"
	}{
		{config.Cache{URL: s3URL(env, "team")}, "team/latest/job-main.txt"},
		{config.Cache{URL: s3URL(env, "a/b/")}, "a/b/latest/job-main.txt"},
		{config.Cache{URL: s3URL(env, "")}, "latest/job-main.txt"},
		{config.Cache{Bucket: env.Bucket, Prefix: "taskrunner/", Endpoint: env.Endpoint, Region: env.Region}, "taskrunner/latest/job-main.txt"},
		{config.Cache{Bucket: env.Bucket, Prefix: "tr-", Endpoint: env.Endpoint, Region: env.Region}, "tr-latest/job-main.txt"},
	} {
		tc.cfg.AccessKey, tc.cfg.SecretKey = env.AccessKey, env.SecretKey
		s, err := open(ctx, tc.cfg, defaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		put(t, s, "latest/job-main.txt", "text/plain", []byte(tc.want))
		out, err := s3test.Client(env).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(env.Bucket), Key: aws.String(tc.want)})
		if err != nil {
			t.Errorf("%s: no object at %q: %v", s.Describe(), tc.want, err)
		} else {
			b, _ := io.ReadAll(out.Body)
			out.Body.Close()
			if string(b) != tc.want {
				t.Errorf("%s: object at %q holds %q", s.Describe(), tc.want, b)
			}
		}
		s.Close()
	}
}

// TestS3CredentialChain: with no TASKRUNNER_AWS_* keys, the AWS SDK's chain
// finds the standard AWS variables.
func TestS3CredentialChain(t *testing.T) {
	env := s3test.Bucket(t)
	t.Setenv("AWS_ACCESS_KEY_ID", env.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", env.SecretKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	s, err := open(context.Background(), config.Cache{URL: s3URL(env, "chain")}, defaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	put(t, s, "latest/x.txt", "", []byte("chain"))
	if got := string(get(t, s, "latest/x.txt")); got != "chain" {
		t.Fatalf("got %q", got)
	}
}

func TestS3MissingBucket(t *testing.T) {
	env := s3test.Bucket(t)
	env.Bucket += "-missing"
	s := openS3Env(t, env, testLimits)
	defer s.Close()
	ctx := testCtx(t)
	check := func(op string, err error) {
		t.Helper()
		switch {
		case err == nil:
			t.Errorf("%s in a missing bucket succeeded", op)
		case !errors.Is(err, ErrBucketNotFound) || errors.Is(err, ErrNotFound):
			t.Errorf("%s in a missing bucket: %v; want ErrBucketNotFound and not ErrNotFound", op, err)
		case !strings.Contains(err.Error(), env.Bucket):
			t.Errorf("%s: %v does not name the bucket", op, err)
		default:
			t.Logf("%s: %v", op, err)
		}
		if err != nil {
			noSecret(t, err.Error(), env.SecretKey)
		}
	}
	_, err := s.Get(ctx, "latest/x.txt")
	check("Get", err)
	_, err = s.Exists(ctx, "latest/x.txt")
	check("Exists", err)
	check("put", tryPut(s, "latest/x.txt", 100))
}

func TestS3WrongSecret(t *testing.T) {
	env := s3test.Bucket(t)
	right := env.SecretKey
	env.SecretKey = fakeSecret
	s := openS3Env(t, env, testLimits)
	defer s.Close()
	_, err := s.Get(testCtx(t), "latest/x.txt")
	if err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("Get with a wrong secret: %v, want an error other than ErrNotFound", err)
	}
	t.Logf("Get: %v", err)
	noSecret(t, err.Error(), right)
	err = tryPut(s, "latest/x.txt", 100)
	if err == nil {
		t.Fatal("put with a wrong secret succeeded")
	}
	noSecret(t, err.Error(), right)
}

// tryPut writes n bytes at key and returns the first error.
func tryPut(s Store, key string, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w, err := s.NewWriter(ctx, key, "")
	if err != nil {
		return err
	}
	if _, err := w.Write(make([]byte, n)); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// openFake opens an S3 store on endpoint with fake credentials.
func openFake(t *testing.T, endpoint string, lim limits) Store {
	t.Helper()
	s, err := open(context.Background(), config.Cache{
		URL:       "s3://bucket/taskrunner/?endpoint=" + url.QueryEscape(endpoint),
		AccessKey: "AKIDFAKE",
		SecretKey: fakeSecret,
	}, lim)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// wantFailFast runs op and checks it fails, not with ErrNotFound, within
// limit, with an error that contains want.
func wantFailFast(t *testing.T, name string, limit time.Duration, want string, op func() error) {
	t.Helper()
	start := time.Now()
	err := op()
	took := time.Since(start)
	switch {
	case err == nil:
		t.Errorf("%s succeeded, want an error", name)
		return
	case errors.Is(err, ErrNotFound):
		t.Errorf("%s: %v; a failure must not look like a cache miss", name, err)
	case took > limit:
		t.Errorf("%s took %s, want under %s", name, took.Round(time.Millisecond), limit)
	case !strings.Contains(err.Error(), want):
		t.Errorf("%s: %v; want it to say %q", name, err, want)
	}
	noSecret(t, err.Error())
	t.Logf("%s failed in %s: %v", name, took.Round(time.Millisecond), err)
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestS3Unreachable uses the real limits: a refused connection must cost
// seconds.
func TestS3Unreachable(t *testing.T) {
	s := openFake(t, "http://"+closedPort(t), defaultLimits)
	ctx := context.Background()
	wantFailFast(t, "Get", 10*time.Second, "connection refused", func() error {
		_, err := s.Get(ctx, "latest/x.txt")
		return err
	})
	wantFailFast(t, "Exists", 10*time.Second, "connection refused", func() error {
		_, err := s.Exists(ctx, "latest/x.txt")
		return err
	})
	wantFailFast(t, "put", 10*time.Second, "connection refused", func() error {
		return tryPut(s, "latest/x.txt", 1000)
	})
}

// TestS3ServerError: a server that answers 500 is tried a bounded number of
// times, then the error shows.
func TestS3ServerError(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>`)
	}))
	defer srv.Close()
	s := openFake(t, srv.URL, testLimits)
	wantFailFast(t, "Get", 5*time.Second, "InternalError", func() error {
		_, err := s.Get(context.Background(), "latest/x.txt")
		return err
	})
	if n := requests.Load(); n != int64(testLimits.attempts) {
		t.Errorf("server saw %d requests for one Get, want %d attempts", n, testLimits.attempts)
	}
	wantFailFast(t, "put", 5*time.Second, "InternalError", func() error {
		return tryPut(s, "latest/x.txt", 1000)
	})
}

// stallServer accepts connections and never answers. It reads what it is
// sent only if read is true.
func stallServer(t *testing.T, read bool) (addr string, conns *atomic.Int64) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns = new(atomic.Int64)
	var held []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			held = append(held, c)
			if read {
				go io.Copy(io.Discard, c)
			}
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		for _, c := range held {
			c.Close()
		}
	})
	return l.Addr().String(), conns
}

// TestS3StallBeforeHeaders: a server that takes the request and says
// nothing fails the operation within the idle timeout, without retries.
func TestS3StallBeforeHeaders(t *testing.T) {
	addr, conns := stallServer(t, true)
	s := openFake(t, "http://"+addr, testLimits)
	wantFailFast(t, "Get", 3*time.Second, "stalled", func() error {
		_, err := s.Get(context.Background(), "latest/x.txt")
		return err
	})
	if n := conns.Load(); n != 1 {
		t.Errorf("a stalled request was tried on %d connections, want 1 (no retry)", n)
	}
}

// TestS3StallUpload: a server that reads nothing of an upload fails it.
func TestS3StallUpload(t *testing.T) {
	addr, _ := stallServer(t, false)
	s := openFake(t, "http://"+addr, testLimits)
	wantFailFast(t, "put", 5*time.Second, "stalled", func() error {
		return tryPut(s, "bundles/x.tar.zst", 8<<20)
	})
}

// TestS3StallMidBody: a download that stops moving fails from Read.
func TestS3StallMidBody(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000000")
		w.WriteHeader(http.StatusOK)
		w.Write(make([]byte, 1000))
		w.(http.Flusher).Flush()
		<-release
	}))
	defer srv.Close()
	defer close(release)
	s := openFake(t, srv.URL, testLimits)
	r, err := s.Get(context.Background(), "bundles/x.tar.zst")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	wantFailFast(t, "read", 3*time.Second, "stalled", func() error {
		_, err := io.ReadAll(r)
		return err
	})
}

// TestS3SlowButMoving: a transfer that keeps moving, however slowly, and a
// caller that is slow to read, are not stalls.
func TestS3SlowButMoving(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, pause := 6, testLimits.idle*2/5 // the network is slow: ~3 idle periods in all
		if strings.HasSuffix(r.URL.Path, "/fast.txt") {
			n, pause = 3, 10*time.Millisecond
		}
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.WriteHeader(http.StatusOK)
		for range n {
			w.Write([]byte("x"))
			w.(http.Flusher).Flush()
			time.Sleep(pause)
		}
	}))
	defer srv.Close()
	s := openFake(t, srv.URL, testLimits)

	r, err := s.Get(context.Background(), "latest/slow.txt")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r)
	r.Close()
	if err != nil || string(b) != "xxxxxx" {
		t.Fatalf("slow download: %q, %v", b, err)
	}

	r, err = s.Get(context.Background(), "latest/fast.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got bytes.Buffer
	p := make([]byte, 1)
	for {
		time.Sleep(testLimits.idle * 6 / 5) // the caller, not the network, is slow
		n, err := r.Read(p)
		got.Write(p[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("slow reader failed after %q: %v", got.String(), err)
		}
	}
}

// TestS3WrongRegion: AWS answers a HEAD in the wrong region with a bare 301,
// which must not pass for a cache miss.
func TestS3WrongRegion(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Amz-Bucket-Region", "us-west-2")
		w.WriteHeader(http.StatusMovedPermanently)
	}))
	defer srv.Close()
	s := openFake(t, srv.URL, testLimits)
	wantFailFast(t, "Exists", 3*time.Second, `the bucket is in region "us-west-2", not "eu-central-1"`, func() error {
		_, err := s.Exists(context.Background(), "latest/x.txt")
		return err
	})
}

// contentType returns the content type stored with the object at key, for
// suiteContentType.
func (s *s3Store) contentType(ctx context.Context, key string) (string, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(s.st.bucket),
		Key:    aws.String(s.st.prefix + key),
	})
	if err != nil {
		return "", s.fail("check", key, err)
	}
	return aws.ToString(out.ContentType), nil
}

// TestS3AWSChecksums: what the store sends AWS (a CRC32 with every upload,
// a composite one for a multipart upload) is accepted and kept by a server
// that checks it. S3-compatible servers are sent no checksum (see openS3).
func TestS3AWSChecksums(t *testing.T) {
	env := s3test.Bucket(t)
	s := openS3Env(t, env, defaultLimits).(*s3Store)
	defer s.Close()
	s.checksum = types.ChecksumAlgorithmCrc32
	for _, tc := range []struct {
		size int
		want types.ChecksumType
	}{
		{100, types.ChecksumTypeFullObject},
		{2*uploadPartSize + 1000, types.ChecksumTypeComposite},
	} {
		data := make([]byte, tc.size)
		rand.NewChaCha8([32]byte{2}).Read(data)
		put(t, s, "bundles/x.tar.zst", "", data)
		if !bytes.Equal(get(t, s, "bundles/x.tar.zst"), data) {
			t.Fatalf("%d bytes: data read back differs", tc.size)
		}
		out, err := s3test.Client(env).HeadObject(testCtx(t), &s3.HeadObjectInput{
			Bucket:       aws.String(env.Bucket),
			Key:          aws.String("taskrunner/bundles/x.tar.zst"),
			ChecksumMode: types.ChecksumModeEnabled,
		})
		if err != nil {
			t.Fatal(err)
		}
		if out.ChecksumCRC32 == nil || out.ChecksumType != tc.want {
			t.Errorf("%d bytes: the server keeps CRC32 %q of type %q, want a CRC32 of type %q",
				tc.size, aws.ToString(out.ChecksumCRC32), out.ChecksumType, tc.want)
		}
	}
}

// TestS3Memory: an upload holds a few parts in memory and a download none,
// whatever the object's size.
func TestS3Memory(t *testing.T) {
	s := openS3Env(t, s3test.Bucket(t), defaultLimits)
	defer s.Close()
	const size = 64 << 20
	allocated := func(op func()) uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		op()
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	up := allocated(func() {
		w, err := s.NewWriter(testCtx(t), "bundles/big.tar.zst", "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(w, io.LimitReader(rand.NewChaCha8([32]byte{3}), size)); err != nil {
			w.Close()
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	})
	down := allocated(func() {
		r, err := s.Get(testCtx(t), "bundles/big.tar.zst")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if n, err := io.Copy(io.Discard, r); n != size || err != nil {
			t.Fatalf("read back %d bytes, %v", n, err)
		}
	})
	t.Logf("a %d MiB object: %d MiB allocated to upload it, %d MiB to download it", size>>20, up>>20, down>>20)
	if up > 40<<20 {
		t.Errorf("uploading %d MiB allocated %d MiB, want at most 40 (%d parts of %d MiB, and change)",
			size>>20, up>>20, uploadConcurrency+1, uploadPartSize>>20)
	}
	if down > 8<<20 {
		t.Errorf("downloading %d MiB allocated %d MiB, want at most 8", size>>20, down>>20)
	}
}

// TestS3AbortLeavesNoUpload: an abandoned multipart upload is aborted, so
// that its parts do not linger, invisible, in the bucket.
func TestS3AbortLeavesNoUpload(t *testing.T) {
	env := s3test.Bucket(t)
	s := openS3Env(t, env, defaultLimits)
	defer s.Close()
	abortedWrite(t, s, "bundles/aborted.tar.zst", 2*uploadPartSize+1000)
	out, err := s3test.Client(env).ListMultipartUploads(testCtx(t), &s3.ListMultipartUploadsInput{Bucket: aws.String(env.Bucket)})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range out.Uploads {
		t.Errorf("a multipart upload of %q is left in the bucket", aws.ToString(u.Key))
	}
}

// TestS3StallPart: a server that starts a multipart upload and then takes
// no part fails the upload within the idle timeout, and is asked to abort
// it.
func TestS3StallPart(t *testing.T) {
	release := make(chan struct{})
	var aborts atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		switch {
		case r.Method == http.MethodPost && q.Has("uploads"):
			w.Header().Set("Content-Type", "application/xml")
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult><Bucket>bucket</Bucket><Key>k</Key><UploadId>up-1</UploadId></InitiateMultipartUploadResult>`)
		case r.Method == http.MethodPut && q.Has("partNumber"):
			<-release // reads nothing, answers nothing
		case r.Method == http.MethodDelete && q.Get("uploadId") == "up-1":
			aborts.Add(1)
			w.WriteHeader(http.StatusNoContent)
		default:
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	defer srv.Close()
	defer close(release)
	s := openFake(t, srv.URL, testLimits)
	wantFailFast(t, "put", 5*time.Second, "stalled", func() error {
		return tryPut(s, "bundles/x.tar.zst", 3*uploadPartSize)
	})
	if n := aborts.Load(); n != 1 {
		t.Errorf("the server was asked %d times to abort the upload, want 1", n)
	}
}
