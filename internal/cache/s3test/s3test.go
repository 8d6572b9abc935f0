// Package s3test runs a real S3 server for tests: versitygw, started once
// per test process on a free loopback port and stopped when it ends.
//
// Each test gets a fresh bucket from Bucket. Outside CI, when the server
// cannot be had, the test is skipped with a message saying what to install;
// with CI=true it fails, so a broken setup cannot pass as green.
//
// A package using it should call Main from its TestMain, which stops the
// server and removes its data; without it the server still dies with the
// test process (Linux), but its data folder stays behind in $TMPDIR.
package s3test

import (
	"context"
	"crypto/rand"
	"debug/buildinfo"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// The server this package runs, pinned.
const (
	Module  = "github.com/versity/versitygw/cmd/versitygw"
	Version = "v1.8.0"
)

// Env is what a test needs to reach its bucket.
type Env struct {
	Endpoint  string // http://127.0.0.1:PORT, path-style
	Region    string
	AccessKey string
	SecretKey string // random for each test process
	Bucket    string // empty, and new for each Bucket call
}

// Bucket returns a new, empty bucket on the server, starting the server on
// first use. When no server can be had it skips the test, or fails it when
// CI=true.
func Bucket(t testing.TB) Env {
	t.Helper()
	env, err := NewBucket(bucketName(t))
	if err != nil {
		unavailable(t, err)
	}
	return env
}

// NewBucket is Bucket for a harness that has no testing.TB: it creates the
// bucket name (which must be unique and valid) and returns an error when no
// server can be had. The harness must fail on that error when CI=true.
func NewBucket(name string) (Env, error) {
	s, err := get()
	if err != nil {
		return Env{}, err
	}
	env := s.env
	env.Bucket = name
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := Client(env).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(env.Bucket)}); err != nil {
		return Env{}, fmt.Errorf("create bucket %q: %w", env.Bucket, err)
	}
	return env, nil
}

// Start starts the server if it is not running and reports why it cannot.
func Start() error {
	_, err := get()
	return err
}

// Client returns an S3 client for env, for tests that look at the server
// directly.
func Client(env Env) *s3.Client {
	return s3.New(s3.Options{
		Region:       env.Region,
		BaseEndpoint: aws.String(env.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(env.AccessKey, env.SecretKey, ""),
	})
}

// Main runs the tests, stops the server and exits with the tests' code.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop stops the server, if it was started, and removes its data.
func Stop() {
	mu.Lock()
	defer mu.Unlock()
	if srv != nil {
		srv.stop()
		srv = nil
	}
	started = false
}

func unavailable(t testing.TB, err error) {
	t.Helper()
	install := "go install " + Module + "@" + Version
	if os.Getenv("CI") == "true" {
		t.Fatalf("s3test: no S3 server for this test (CI=true, so this fails): %v\ninstall it with: %s", err, install)
	}
	// A skip shows only with -v: say it once on stderr too, so that a
	// plain go test does not look like the S3 tests passed.
	warnOnce.Do(func() {
		fmt.Fprintf(os.Stderr, "s3test: SKIPPING the S3 tests: %v\ns3test: install versitygw with: %s\n", err, install)
	})
	t.Skipf("SKIPPED: no S3 server, so the S3 tests did not run: %v\ninstall versitygw with: %s", err, install)
}

var warnOnce sync.Once

var (
	mu      sync.Mutex
	started bool // start was tried; srv and srvErr hold its outcome
	srv     *server
	srvErr  error
)

func get() (*server, error) {
	mu.Lock()
	defer mu.Unlock()
	if !started {
		started = true
		srv, srvErr = start()
	}
	return srv, srvErr
}

var bucketSeq atomic.Int64

// bucketName makes a valid, unique bucket name that shows the test's name.
func bucketName(t testing.TB) string {
	n := strings.ToLower(t.Name())
	n = regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(n, "-")
	n = strings.Trim(n, "-")
	if len(n) > 40 {
		n = strings.TrimRight(n[:40], "-")
	}
	return fmt.Sprintf("t-%s-%d", n, bucketSeq.Add(1))
}

type server struct {
	env  Env
	cmd  *exec.Cmd
	dir  string        // data and log
	done chan struct{} // closed when the process has exited
}

func start() (*server, error) {
	bin, err := findOrInstall()
	if err != nil {
		return nil, err
	}
	var lastErr error
	for range 3 { // another process may take the free port first
		s, err := launch(bin)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func launch(bin string) (*server, error) {
	dir, err := os.MkdirTemp("", "s3test-")
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	secret := make([]byte, 12)
	rand.Read(secret)
	s := &server{
		env: Env{
			Endpoint:  "http://127.0.0.1:" + port,
			Region:    "us-east-1",
			AccessKey: "s3test",
			SecretKey: "s3test-secret-" + hex.EncodeToString(secret),
		},
		dir:  dir,
		done: make(chan struct{}),
	}
	logf, err := os.Create(filepath.Join(dir, "versitygw.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	defer logf.Close()
	s.cmd = exec.Command(bin,
		"--port", "127.0.0.1:"+port,
		"--region", s.env.Region,
		"--quiet",
		"posix", data)
	// In the environment rather than on the command line, out of ps.
	s.cmd.Env = append(os.Environ(),
		"ROOT_ACCESS_KEY_ID="+s.env.AccessKey,
		"ROOT_SECRET_ACCESS_KEY="+s.env.SecretKey,
	)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = sysProcAttr()

	// Pdeathsig (sysProcAttr) fires when the thread that started the child
	// ends, not the process: keep this goroutine on its thread until the
	// child is gone.
	startErr := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := s.cmd.Start(); err != nil {
			startErr <- err
			return
		}
		startErr <- nil
		_ = s.cmd.Wait()
		close(s.done)
	}()
	if err := <-startErr; err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	if err := s.waitReady(20 * time.Second); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// waitReady waits until the server answers HTTP, whatever it answers.
func (s *server) waitReady(limit time.Duration) error {
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(limit)
	for {
		resp, err := hc.Get(s.env.Endpoint + "/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("versitygw exited at start: %s", s.logTail())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("versitygw did not answer on %s within %s: %v; log: %s", s.env.Endpoint, limit, err, s.logTail())
		}
	}
}

func (s *server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "versitygw.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// stop asks the server's process group to end, then kills it.
func (s *server) stop() {
	terminate(s.cmd.Process.Pid)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		kill(s.cmd.Process.Pid)
		<-s.done
	}
	os.RemoveAll(s.dir)
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}

// findOrInstall returns the versitygw binary: on PATH, in GOBIN or
// GOPATH/bin, or else just installed there with go install.
func findOrInstall() (string, error) {
	if bin := find(); bin != "" {
		return bin, nil
	}
	fmt.Fprintf(os.Stderr, "s3test: versitygw not found; running go install %s@%s (a minute or two)\n", Module, Version)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "install", Module+"@"+Version).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go install %s@%s: %v: %s", Module, Version, err, strings.TrimSpace(string(out)))
	}
	if bin := find(); bin != "" {
		return bin, nil
	}
	return "", errors.New("versitygw installed but not found on PATH, in GOBIN or in GOPATH/bin")
}

func find() string {
	var candidates []string
	if p, err := exec.LookPath("versitygw"); err == nil {
		candidates = append(candidates, p)
	}
	if out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		lines := strings.Split(string(out), "\n")
		if gobin := strings.TrimSpace(lines[0]); gobin != "" {
			candidates = append(candidates, filepath.Join(gobin, "versitygw"))
		}
		if len(lines) > 1 {
			for _, gp := range filepath.SplitList(strings.TrimSpace(lines[1])) {
				candidates = append(candidates, filepath.Join(gp, "bin", "versitygw"))
			}
		}
	}
	for _, c := range candidates {
		if fi, err := os.Stat(c); err == nil && !fi.IsDir() {
			if bi, err := buildinfo.ReadFile(c); err == nil && bi.Main.Version != Version {
				fmt.Fprintf(os.Stderr, "s3test: using %s, version %s rather than %s\n", c, bi.Main.Version, Version)
			}
			return c
		}
	}
	return ""
}
