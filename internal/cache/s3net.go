package cache

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

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

// newRetryer returns the S3 client's retryer: lim.attempts tries, backing
// off up to lim.maxBackoff, and no second try after a stall.
func newRetryer(lim limits) func() aws.Retryer {
	return func() aws.Retryer {
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
