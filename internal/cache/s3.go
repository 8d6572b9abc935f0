package cache

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"gocloud.dev/blob"
	"gocloud.dev/blob/s3blob"
)

// s3Settings are what Open found for an S3 store.
type s3Settings struct {
	bucket   string
	prefix   string // "" or ends with the caller's choice of separator
	region   string
	endpoint string // "" for AWS; else an http(s) URL, used path-style
	// accessKey and secretKey are static credentials; both empty means the
	// AWS SDK's default credential chain.
	accessKey, secretKey string
}

// limits bound how long the S3 store waits on the network. The remote
// cache is an optimisation: an unreachable or sick endpoint must cost a
// build seconds, not minutes, and never hang it.
type limits struct {
	// connect bounds a TCP connect and, separately, a TLS handshake.
	connect time.Duration
	// header bounds the wait for response headers once a request is sent.
	header time.Duration
	// idle is how long a connection may move no byte either way while a
	// request or a body read waits on it; then it fails as stalled, and the
	// failure is not retried.
	idle time.Duration
	// attempts is how many times the SDK tries a request, first included.
	attempts int
	// maxBackoff bounds the SDK's wait between two attempts.
	maxBackoff time.Duration
}

// defaultLimits: with a refused connection, three attempts cost about two
// seconds of backoff; with an endpoint that drops packets, about 3×3 s of
// connects; with a server that stops answering, one idle period.
var defaultLimits = limits{
	connect:    3 * time.Second,
	header:     30 * time.Second,
	idle:       20 * time.Second,
	attempts:   3,
	maxBackoff: 2 * time.Second,
}

// openS3 returns the S3 store for st. It sends no request: a wrong
// endpoint, bucket or credential shows on the first operation.
func openS3(ctx context.Context, st s3Settings, lim limits) (Store, error) {
	hc := newHTTPClient(lim)
	retryer := func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = lim.attempts
			o.MaxBackoff = lim.maxBackoff
			// A stalled connection means a sick server: trying again would
			// only wait another idle period.
			o.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
				var se *stallError
				if errors.As(err, &se) {
					return aws.FalseTernary
				}
				return aws.UnknownTernary
			})}, o.Retryables...)
		})
	}

	var cfg aws.Config
	if st.accessKey != "" {
		// Static credentials: read no ambient AWS configuration, which could
		// only get in the way (a broken ~/.aws/config, a missing AWS_PROFILE).
		cfg = aws.Config{
			Region:      st.region,
			Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(st.accessKey, st.secretKey, "")),
			HTTPClient:  opaqueClient{hc},
			Retryer:     retryer,
		}
	} else {
		var err error
		cfg, err = awsconfig.LoadDefaultConfig(ctx,
			awsconfig.WithRegion(st.region),
			awsconfig.WithHTTPClient(hc),
			awsconfig.WithRetryer(retryer),
		)
		if err != nil {
			return nil, fmt.Errorf("cannot load the AWS configuration for the remote cache: %w", err)
		}
		cfg.HTTPClient = opaqueClient{cfg.HTTPClient}
	}
	checksums := aws.RequestChecksumCalculationWhenSupported
	if st.endpoint != "" {
		// S3-compatible servers often reject the SDK's newer default
		// checksums (aws-chunked trailers); send them only where the API
		// requires them.
		checksums = aws.RequestChecksumCalculationWhenRequired
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if st.endpoint != "" {
			o.BaseEndpoint = aws.String(st.endpoint)
			o.UsePathStyle = true
			o.RequestChecksumCalculation = checksums
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		}
	})
	b, err := s3blob.OpenBucket(ctx, client, st.bucket, &s3blob.Options{RequestChecksumCalculation: checksums})
	if err != nil {
		return nil, fmt.Errorf("cannot open the remote cache bucket %q: %w", st.bucket, err)
	}
	if st.prefix != "" {
		b = blob.PrefixedBucket(b, st.prefix)
	}

	var known atomic.Bool // the bucket was seen to exist
	bucketExists := func(ctx context.Context) (bool, error) {
		if known.Load() {
			return true, nil
		}
		_, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(st.bucket)})
		if err == nil {
			known.Store(true)
			return true, nil
		}
		var ae smithy.APIError
		if errors.As(err, &ae) && (ae.ErrorCode() == "NotFound" || ae.ErrorCode() == "NoSuchBucket") {
			return false, nil
		}
		// HeadBucket needs s3:ListBucket, which a cache user may lack;
		// without an answer, believe the HEAD of the object.
		return true, nil
	}

	s := &blobStore{
		bucket:       b,
		base:         "s3://" + st.bucket + "/" + st.prefix,
		explain:      func(err error) error { return explainS3(st, err) },
		bucketExists: bucketExists,
		writerOptions: func(o *blob.WriterOptions) {
			uploadBuffers(o, client, checksums)
		},
	}
	if st.endpoint != "" {
		s.at = " at " + redactURL(st.endpoint)
	}
	return s, nil
}

// Uploads go to S3 in parts of uploadPartSize, uploadConcurrency at a time.
// The SDK's transfer manager holds uploadConcurrency+1 parts in memory, so
// these bound an upload's memory whatever the archive's size: 20 MiB. The
// SDK's defaults (five parts of 8 MiB, and a first read of 16 MiB) would
// take 64 MiB, as much again as the archive writer. Three parts in flight
// keep a loopback server or a nearby S3 busy; 5 MiB is S3's smallest part,
// and allows archives up to 48 GiB (10,000 parts).
const (
	uploadPartSize    = 5 << 20
	uploadConcurrency = 3
)

// uploadBuffers sets a writer's part size and concurrency. gocloud passes
// those two on to the SDK's transfer manager, but not the size of the first
// read, which decides between a single PUT and a multipart upload (16 MiB by
// default): the writer's transfer manager is replaced by one configured in
// full, which reads one part first.
func uploadBuffers(o *blob.WriterOptions, client *s3.Client, checksums aws.RequestChecksumCalculation) {
	o.BufferSize = uploadPartSize
	o.MaxConcurrency = uploadConcurrency
	o.BeforeWrite = func(as func(any) bool) error {
		var tm *transfermanager.Client
		if as(&tm) && tm != nil {
			*tm = *transfermanager.New(client, func(t *transfermanager.Options) {
				t.RequestChecksumCalculation = checksums // as gocloud sets it
				t.PartSizeBytes = uploadPartSize
				t.Concurrency = uploadConcurrency
				t.MultipartUploadThreshold = uploadPartSize
			})
		}
		return nil
	}
}

// redactURL returns raw without user info, query or fragment, or "(custom
// endpoint)" when it does not parse.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(custom endpoint)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// explainS3 returns a shorter error for the S3 failures a user meets, or nil.
func explainS3(st s3Settings, err error) error {
	var (
		ae   smithy.APIError
		send *smithyhttp.RequestSendError
		resp *awshttp.ResponseError
		max  *retry.MaxAttemptsError
		msg  string
	)
	switch {
	case errors.Is(err, ErrBucketNotFound) || errors.As(err, &ae) && ae.ErrorCode() == "NoSuchBucket":
		return &shortError{
			msg: fmt.Sprintf("%v: %q; create it or fix the bucket setting", ErrBucketNotFound, st.bucket),
			err: errors.Join(ErrBucketNotFound, err),
		}
	case errors.As(err, &resp) && resp.HTTPStatusCode() == http.StatusMovedPermanently:
		// AWS's answer for a bucket in another region.
		where := "another region"
		if r := resp.Response.Header.Get("X-Amz-Bucket-Region"); r != "" {
			where = fmt.Sprintf("region %q", r)
		}
		msg = fmt.Sprintf("the bucket is in %s, not %q: set TASKRUNNER_AWS_REGION or ?region= in TASKRUNNER_REMOTE_CACHE_URL", where, st.region)
	case errors.Is(err, context.Canceled):
		msg = "cancelled"
	case errors.Is(err, context.DeadlineExceeded):
		msg = "timed out"
	case errors.As(err, &ae):
		msg = "S3 answered "
		if errors.As(err, &resp) {
			msg += fmt.Sprintf("%d ", resp.HTTPStatusCode())
		}
		msg += ae.ErrorCode()
		if m := ae.ErrorMessage(); m != "" && m != ae.ErrorCode() {
			msg += ": " + m
		}
	case errors.As(err, &send):
		cause := send.Err
		var ue *url.Error
		if errors.As(cause, &ue) {
			cause = ue.Err // drop the method and URL: where() has said it
		}
		msg = "request failed: " + cause.Error()
	default:
		var se *stallError
		if errors.As(err, &se) {
			msg = se.Error()
		} else {
			return nil
		}
	}
	if errors.As(err, &max) {
		msg += fmt.Sprintf(" (%d attempts)", max.Attempt)
	}
	return &shortError{msg: msg, err: err}
}

// newHTTPClient returns the HTTP client of the S3 store, which fails
// instead of hanging, as lim says. It is the SDK's BuildableClient so that
// LoadDefaultConfig can add AWS_CA_BUNDLE to it; see opaqueClient.
func newHTTPClient(lim limits) *awshttp.BuildableClient {
	dialer := &net.Dialer{Timeout: lim.connect, KeepAlive: 30 * time.Second}
	return awshttp.NewBuildableClient().
		WithReadTimeout(0). // idleConn does it, for writes too
		WithTransportOptions(func(tr *http.Transport) {
			tr.Proxy = http.ProxyFromEnvironment
			tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := dialer.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return &idleConn{Conn: c, idle: lim.idle}, nil
			}
			tr.TLSHandshakeTimeout = lim.connect
			tr.ResponseHeaderTimeout = lim.header
			tr.ExpectContinueTimeout = time.Second
			// Close pooled connections before idleConn would fail them.
			tr.IdleConnTimeout = lim.idle / 2
			tr.MaxIdleConnsPerHost = 16
			// HTTP/1.1 only: S3 speaks nothing else, and idleConn's
			// deadlines are simplest to reason about on one request per
			// connection at a time.
			tr.ForceAttemptHTTP2 = false
		})
}

// opaqueClient hides the BuildableClient from the S3 client, which would
// otherwise rebuild it with its own dialer and lose idleConn.
type opaqueClient struct{ c aws.HTTPClient }

func (o opaqueClient) Do(r *http.Request) (*http.Response, error) { return o.c.Do(r) }

// stallError is a connection that moved no byte for too long.
type stallError struct {
	idle time.Duration
}

func (e *stallError) Error() string {
	return fmt.Sprintf("connection stalled: no data for %s", e.idle)
}

// Timeout and Temporary make a stallError a net.Error, as a deadline error
// is, for the code in net/http that asks.
func (e *stallError) Timeout() bool   { return true }
func (e *stallError) Temporary() bool { return true }

// Is lets errors.Is(err, os.ErrDeadlineExceeded) keep working.
func (e *stallError) Is(target error) bool { return target == os.ErrDeadlineExceeded }

// idleConn fails a Read or a Write that waits more than idle with no byte
// moving either way. A deadline is set when a call starts and pushed back
// whenever bytes move in either direction, so a long upload keeps alive the
// transport's pending read of the response, and a caller that is slow to
// read a body is not blamed for it.
type idleConn struct {
	net.Conn
	idle time.Duration
	// stalled is set once a deadline fired. The transport then closes the
	// connection, and the other direction fails with "use of closed network
	// connection": that is the same stall, and must say so (and not be
	// retried), whichever error the transport passes on.
	stalled atomic.Bool
}

// chunk bounds one write, so that progress is seen, and the deadline pushed
// back, at least this often on a slow link.
const chunk = 64 << 10

func (c *idleConn) Read(p []byte) (int, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	n, err := c.Conn.Read(p)
	if n > 0 {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(c.idle))
	}
	return n, c.mapErr(err)
}

func (c *idleConn) Write(p []byte) (int, error) {
	var done int
	for len(p) > 0 {
		b := p
		if len(b) > chunk {
			b = b[:chunk]
		}
		_ = c.Conn.SetWriteDeadline(time.Now().Add(c.idle))
		n, err := c.Conn.Write(b)
		done += n
		if n > 0 {
			_ = c.Conn.SetReadDeadline(time.Now().Add(c.idle))
		}
		if err != nil {
			return done, c.mapErr(err)
		}
		p = p[n:]
	}
	return done, nil
}

func (c *idleConn) mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.stalled.Store(true)
	}
	if c.stalled.Load() {
		return &stallError{idle: c.idle}
	}
	return err
}
