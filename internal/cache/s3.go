package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
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

// openS3 returns the S3 store for st. It sends no request: a wrong
// endpoint, bucket or credential shows on the first operation.
func openS3(ctx context.Context, st s3Settings, lim limits) (Store, error) {
	hc := newHTTPClient(lim)
	retryer := newRetryer(lim)
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
	// The credentials are in cfg: the store keeps none that a message
	// could show.
	st.accessKey, st.secretKey = "", ""
	s := &s3Store{st: st, base: "s3://" + st.bucket + "/" + st.prefix}
	if st.endpoint == "" {
		// AWS gets a CRC32 with each upload request, as the SDK's transfer
		// manager sends it; S3-compatible servers get none (below).
		s.checksum = types.ChecksumAlgorithmCrc32
	} else {
		s.at = " at " + redactURL(st.endpoint)
	}
	s.client = s3.NewFromConfig(cfg, func(o *s3.Options) {
		// With the credential chain's configuration the SDK logs to
		// stderr, and would warn at each download of a multipart object
		// that it cannot check its composite checksum.
		o.DisableLogOutputChecksumValidationSkipped = true
		if st.endpoint != "" {
			o.BaseEndpoint = aws.String(st.endpoint)
			o.UsePathStyle = true
			// S3-compatible servers often reject the SDK's newer default
			// checksums (aws-chunked trailers); send them only where the
			// API requires them.
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		}
	})
	return s, nil
}

// s3Store is the Store of openS3: the object at key is st.prefix+key in
// st.bucket.
type s3Store struct {
	client *s3.Client
	st     s3Settings
	// base + key names an object in messages ("s3://bucket/prefix/key");
	// at follows it, saying where the store is when base does not (" at
	// http://host:port" for an S3-compatible server).
	base, at string
	// checksum is the algorithm of the checksum sent with each upload
	// request; "" sends none beyond what the API requires.
	checksum types.ChecksumAlgorithm
	// bucketSeen is set once the bucket was seen to exist.
	bucketSeen atomic.Bool
}

var _ Store = (*s3Store)(nil)

func (s *s3Store) Describe() string { return s.base + s.at }

// Close has nothing to release: the HTTP client's idle connections close
// by themselves.
func (s *s3Store) Close() error { return nil }

// where names an object in messages.
func (s *s3Store) where(key string) string { return s.base + key + s.at }

// fail wraps err from op on key into the error a caller sees.
func (s *s3Store) fail(op, key string, err error) error {
	if e := explainS3(s.st, err); e != nil {
		err = e
	}
	return fmt.Errorf("%s %s: %w", op, s.where(key), err)
}

func (s *s3Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.st.bucket),
		Key:    aws.String(s.st.prefix + key),
	})
	if err != nil {
		if noSuchKey(err) {
			return nil, fmt.Errorf("get %s: %w", s.where(key), ErrNotFound)
		}
		return nil, s.fail("get", key, err)
	}
	return &s3Reader{body: out.Body, s: s, key: key}, nil
}

func (s *s3Store) Exists(ctx context.Context, key string) (bool, error) {
	if err := checkKey(key); err != nil {
		return false, err
	}
	_, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(s.st.bucket),
		Key:    aws.String(s.st.prefix + key),
	})
	if err == nil {
		return true, nil
	}
	if !noSuchKey(err) {
		return false, s.fail("check", key, err)
	}
	// The answer to a HEAD has no body: a missing bucket is the same bare
	// 404 as a missing key.
	if !s.bucketExists(ctx) {
		return false, s.fail("check", key, ErrBucketNotFound)
	}
	return false, nil
}

// noSuchKey reports whether err says that no object is at a key: a GET's
// NoSuchKey, or a HEAD's 404 (which a missing bucket answers too).
func noSuchKey(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode() == "NoSuchKey" || ae.ErrorCode() == "NotFound"
	}
	var resp *awshttp.ResponseError
	return errors.As(err, &resp) && resp.HTTPStatusCode() == http.StatusNotFound
}

// bucketExists reports whether the bucket exists, asking S3 until it has
// once said yes.
func (s *s3Store) bucketExists(ctx context.Context) bool {
	if s.bucketSeen.Load() {
		return true
	}
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.st.bucket)})
	if err == nil {
		s.bucketSeen.Store(true)
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) && (ae.ErrorCode() == "NotFound" || ae.ErrorCode() == "NoSuchBucket") {
		return false
	}
	// HeadBucket needs s3:ListBucket, which a cache user may lack; without
	// an answer, believe the HEAD of the object.
	return true
}

// s3Reader streams an object's body and names the object in its errors.
type s3Reader struct {
	body io.ReadCloser
	s    *s3Store
	key  string
}

func (r *s3Reader) Read(p []byte) (int, error) {
	n, err := r.body.Read(p)
	if err != nil && err != io.EOF {
		err = r.s.fail("read", r.key, err)
	}
	return n, err
}

func (r *s3Reader) Close() error {
	if err := r.body.Close(); err != nil {
		return r.s.fail("read", r.key, err)
	}
	return nil
}

// shortError replaces the message of err, keeping err for errors.Is and
// errors.As: the AWS SDK piles up layers ("operation error S3: GetObject,
// https response error StatusCode: 0, RequestID: , …") that a warn line can
// do without.
type shortError struct {
	msg string
	err error
}

func (e *shortError) Error() string { return e.msg }
func (e *shortError) Unwrap() error { return e.err }

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
