package cache

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync/atomic"

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
