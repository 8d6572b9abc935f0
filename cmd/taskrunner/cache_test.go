package main

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/klauspost/compress/zstd"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/taskrunner/taskrunner/internal/cache/s3test"
)

var scriptBuckets atomic.Int64

// s3Available starts the S3 server if needed and reports whether it runs.
// Without one, scripts skip, loudly, or fail when CI=true.
func s3Available() (bool, error) {
	err := s3test.Start()
	if err == nil {
		return true, nil
	}
	install := "go install " + s3test.Module + "@" + s3test.Version
	if os.Getenv("CI") == "true" {
		return false, fmt.Errorf("no S3 server (CI=true, so this fails): %v; install it with: %s", err, install)
	}
	s3Warning.Do(func() {
		fmt.Fprintf(os.Stderr, "SKIPPING the S3 scripts: %v; install versitygw with: %s\n", strings.ReplaceAll(err.Error(), "\n", " "), install)
	})
	return false, nil
}

var s3Warning sync.Once

// Variables `s3 bucket` sets besides taskrunner's own, so that a script can
// spell the URL form of the settings and the other s3 subcommands can reach
// the bucket whatever the script did to taskrunner's variables.
const (
	envS3Endpoint  = "S3TEST_ENDPOINT"
	envS3Region    = "S3TEST_REGION"
	envS3Bucket    = "S3TEST_BUCKET"
	envS3AccessKey = "S3TEST_ACCESS_KEY"
	envS3SecretKey = "S3TEST_SECRET_KEY"
)

// cmdS3 gives a script a bucket on a real S3 server (versitygw), and looks
// at it or breaks the way to it:
//
//	s3 bucket             a fresh bucket; sets the legacy TASKRUNNER_* S3
//	                      settings, and S3TEST_ENDPOINT, S3TEST_REGION,
//	                      S3TEST_BUCKET, S3TEST_ACCESS_KEY, S3TEST_SECRET_KEY
//	s3 put KEY FILE       store FILE at KEY
//	s3 get KEY FILE       write the object at KEY to FILE, its content type to
//	                      stdout; KEY may be a pattern (path.Match) that
//	                      matches one key
//	s3 ls [PREFIX]        the keys under PREFIX, one a line, sorted, to stdout
//	s3 tar KEY            the entries of the .tar.zst at KEY to stdout, one a
//	                      line: "NAME" ("NAME -> TARGET" for a symlink)
//	s3 truncate KEY       replace the object at KEY by its first half
//	s3 fault METHOD STATUS  from now on, requests with METHOD answer STATUS
//	                      (an S3 error body): TASKRUNNER_S3_ENDPOINT points at a
//	                      proxy in front of the server
//	s3 unreachable        TASKRUNNER_S3_ENDPOINT points at a closed loopback port
//	s3 stall FILE         TASKRUNNER_S3_ENDPOINT points at a loopback server that
//	                      accepts connections and never answers; FILE appears
//	                      once a request has reached it. Needs no `s3 bucket`:
//	                      it sets the other settings when they are unset
//	s3 throttle RATE FILE from now on, GET answers trickle at RATE bytes a second
//	                      (through the proxy of `s3 fault`); FILE appears once a
//	                      body starts to trickle
//
// `! s3 ls` fails unless the listing is empty. A script checks for the
// server first with `[!s3] skip`.
func cmdS3(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) == 0 {
		ts.Fatalf("usage: s3 bucket|put|get|ls|tar|truncate|fault|throttle|unreachable|stall ...")
	}
	if neg && args[0] != "ls" {
		ts.Fatalf("s3 %s: cannot be negated", args[0])
	}
	if args[0] == "bucket" {
		s3Bucket(ts, args)
		return
	}
	if args[0] == "stall" {
		s3Stall(ts, s3Arg(ts, args, 1))
		return
	}
	env := s3test.Env{
		Endpoint:  ts.Getenv(envS3Endpoint),
		Region:    ts.Getenv(envS3Region),
		AccessKey: ts.Getenv(envS3AccessKey),
		SecretKey: ts.Getenv(envS3SecretKey),
		Bucket:    ts.Getenv(envS3Bucket),
	}
	if env.Endpoint == "" {
		ts.Fatalf("s3 %s: no bucket; call `s3 bucket` first", args[0])
	}
	client := s3test.Client(env)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	switch args[0] {
	case "put":
		key, file := s3Arg(ts, args, 1), s3Arg(ts, args, 2)
		b, err := os.ReadFile(ts.MkAbs(file))
		ts.Check(err)
		_, err = client.PutObject(ctx, &s3.PutObjectInput{Bucket: &env.Bucket, Key: &key, Body: bytes.NewReader(b)})
		ts.Check(err)
	case "get":
		key, file := s3Arg(ts, args, 1), s3Arg(ts, args, 2)
		if strings.ContainsAny(key, "*?[") {
			key = s3Match(ctx, ts, client, env.Bucket, key)
		}
		b, ctype := s3Get(ctx, ts, client, env.Bucket, key)
		ts.Check(os.WriteFile(ts.MkAbs(file), b, 0o644))
		fmt.Fprintln(ts.Stdout(), ctype)
	case "ls":
		var prefix *string
		if len(args) > 1 {
			prefix = &args[1]
		}
		keys := s3List(ctx, ts, client, env.Bucket, prefix)
		out := ts.Stdout()
		for _, k := range keys {
			fmt.Fprintln(out, k)
		}
		if neg && len(keys) > 0 {
			ts.Fatalf("s3 ls: %d keys, want none", len(keys))
		}
		if !neg && len(keys) == 0 {
			ts.Fatalf("s3 ls: no keys")
		}
	case "tar":
		b, _ := s3Get(ctx, ts, client, env.Bucket, s3Arg(ts, args, 1))
		dec, err := zstd.NewReader(bytes.NewReader(b))
		ts.Check(err)
		defer dec.Close()
		tr := tar.NewReader(dec)
		out := ts.Stdout()
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			ts.Check(err)
			if hdr.Typeflag == tar.TypeSymlink {
				fmt.Fprintf(out, "%s -> %s\n", hdr.Name, hdr.Linkname)
			} else {
				fmt.Fprintln(out, hdr.Name)
			}
		}
	case "truncate":
		key := s3Arg(ts, args, 1)
		b, _ := s3Get(ctx, ts, client, env.Bucket, key)
		_, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: &env.Bucket, Key: &key, Body: bytes.NewReader(b[:len(b)/2])})
		ts.Check(err)
	case "fault":
		method := s3Arg(ts, args, 1)
		status, err := strconv.Atoi(s3Arg(ts, args, 2))
		ts.Check(err)
		faultProxy(ts, env.Endpoint).set(method, status)
	case "throttle":
		rate, err := strconv.Atoi(s3Arg(ts, args, 1))
		ts.Check(err)
		faultProxy(ts, env.Endpoint).slow(rate, ts.MkAbs(s3Arg(ts, args, 2)))
	case "unreachable":
		l, err := net.Listen("tcp", "127.0.0.1:0")
		ts.Check(err)
		addr := l.Addr().String()
		ts.Check(l.Close())
		ts.Setenv("TASKRUNNER_S3_ENDPOINT", "http://"+addr)
	default:
		ts.Fatalf("s3: unknown subcommand %q", args[0])
	}
}

func s3Bucket(ts *testscript.TestScript, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: s3 bucket")
	}
	env, err := s3test.NewBucket(fmt.Sprintf("script-%d-%d", os.Getpid(), scriptBuckets.Add(1)))
	ts.Check(err)
	ts.Setenv("TASKRUNNER_S3_ENDPOINT", env.Endpoint)
	ts.Setenv("TASKRUNNER_AWS_REGION", env.Region)
	ts.Setenv("TASKRUNNER_AWS_ACCESS_KEY", env.AccessKey)
	ts.Setenv("TASKRUNNER_AWS_SECRET_KEY", env.SecretKey)
	ts.Setenv("TASKRUNNER_REMOTE_CACHE_BUCKET", env.Bucket)
	ts.Setenv(envS3Endpoint, env.Endpoint)
	ts.Setenv(envS3Region, env.Region)
	ts.Setenv(envS3AccessKey, env.AccessKey)
	ts.Setenv(envS3SecretKey, env.SecretKey)
	ts.Setenv(envS3Bucket, env.Bucket)
}

func s3Arg(ts *testscript.TestScript, args []string, i int) string {
	if i >= len(args) {
		ts.Fatalf("s3 %s: missing argument %d", args[0], i)
	}
	return args[i]
}

func s3List(ctx context.Context, ts *testscript.TestScript, client *s3.Client, bucket string, prefix *string) []string {
	var keys []string
	p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		ts.Check(err)
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	slices.Sort(keys)
	return keys
}

// s3Match returns the one key that matches pattern (path.Match syntax).
func s3Match(ctx context.Context, ts *testscript.TestScript, client *s3.Client, bucket, pattern string) string {
	prefix := pattern[:strings.IndexAny(pattern, "*?[")]
	var found []string
	for _, k := range s3List(ctx, ts, client, bucket, &prefix) {
		ok, err := path.Match(pattern, k)
		ts.Check(err)
		if ok {
			found = append(found, k)
		}
	}
	if len(found) != 1 {
		ts.Fatalf("s3: %d keys match %s, want 1: %v", len(found), pattern, found)
	}
	return found[0]
}

func s3Get(ctx context.Context, ts *testscript.TestScript, client *s3.Client, bucket, key string) ([]byte, string) {
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	ts.Check(err)
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	ts.Check(err)
	return b, aws.ToString(out.ContentType)
}

// s3Stall points TASKRUNNER_S3_ENDPOINT at a server that accepts
// connections, reads what they send, and never answers, as a hung S3
// endpoint does. marker appears once a request has arrived.
func s3Stall(ts *testscript.TestScript, marker string) {
	marker = ts.MkAbs(marker)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() {
				buf := make([]byte, 4096)
				if n, _ := c.Read(buf); n > 0 {
					_ = os.WriteFile(marker, nil, 0o644)
				}
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	ts.Defer(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	ts.Setenv("TASKRUNNER_S3_ENDPOINT", "http://"+l.Addr().String())
	// Static keys: the AWS credential chain would look for an instance
	// role first.
	for k, v := range map[string]string{
		"TASKRUNNER_REMOTE_CACHE_BUCKET": "stalled",
		"TASKRUNNER_AWS_ACCESS_KEY":      "stalled",
		"TASKRUNNER_AWS_SECRET_KEY":      "stalled",
	} {
		if ts.Getenv(k) == "" {
			ts.Setenv(k, v)
		}
	}
}

// proxy stands between taskrunner and the S3 server and answers chosen
// requests with an error, as a sick S3 endpoint does, or slowly.
type proxy struct {
	mu     sync.Mutex
	faults map[string]int // method → status
	// rate, when not 0, is the bytes per second GET answers trickle at;
	// marker appears once one starts.
	rate   int
	marker string
}

var (
	proxiesMu sync.Mutex
	proxies   = map[*testscript.TestScript]*proxy{}
)

// faultProxy returns the script's proxy, starting it and pointing
// TASKRUNNER_S3_ENDPOINT at it on first use.
func faultProxy(ts *testscript.TestScript, endpoint string) *proxy {
	proxiesMu.Lock()
	defer proxiesMu.Unlock()
	if p := proxies[ts]; p != nil {
		return p
	}
	target, err := url.Parse(endpoint)
	ts.Check(err)
	p := &proxy{faults: map[string]int{}}
	// The Host header is kept as the client sent it, so that the signature,
	// which covers it, still holds at the server.
	rp := httputil.NewSingleHostReverseProxy(target)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		status := p.faults[r.Method]
		rate, marker := p.rate, p.marker
		p.mu.Unlock()
		if status == 0 && rate > 0 && r.Method == http.MethodGet {
			rp.ServeHTTP(&slowWriter{ResponseWriter: w, rate: rate, marker: marker}, r)
			return
		}
		if status == 0 {
			rp.ServeHTTP(w, r)
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected fault</Message><Resource>%s</Resource></Error>`, r.URL.Path)
		}
	})}
	go func() { _ = srv.Serve(l) }()
	proxies[ts] = p
	ts.Defer(func() {
		srv.Close()
		proxiesMu.Lock()
		delete(proxies, ts)
		proxiesMu.Unlock()
	})
	ts.Setenv("TASKRUNNER_S3_ENDPOINT", "http://"+l.Addr().String())
	return p
}

func (p *proxy) slow(rate int, marker string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rate, p.marker = rate, marker
}

// slowWriter writes an answer's body at rate bytes a second, in tenths.
type slowWriter struct {
	http.ResponseWriter
	rate    int
	marker  string
	started bool
}

func (w *slowWriter) Write(p []byte) (int, error) {
	step := max(w.rate/10, 1)
	done := 0
	for len(p) > 0 {
		b := p[:min(step, len(p))]
		n, err := w.ResponseWriter.Write(b)
		done += n
		if err != nil {
			return done, err
		}
		http.NewResponseController(w.ResponseWriter).Flush()
		if !w.started {
			w.started = true
			_ = os.WriteFile(w.marker, nil, 0o644)
		}
		p = p[n:]
		time.Sleep(100 * time.Millisecond)
	}
	return done, nil
}

// Unwrap lets the reverse proxy flush the answer through w.
func (w *slowWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (p *proxy) set(method string, status int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults[method] = status
}

// cmdTarZst writes a .tar.zst archive with the entries given, for archives
// that taskrunner would never make:
//
//	tarzst FILE ENTRY...
//
// An ENTRY is NAME=TEXT (a file holding TEXT), NAME->TARGET (a symlink),
// NAME=>TARGET (a hard link) or NAME/ (a folder). Names are stored as they
// are, "../x" and "/abs" too. "MODE NAME=TEXT" (octal, as 4777) gives a
// file its mode bits, 0644 otherwise; "{N}" in a name stands for N folders
// named d ("out/{300}f=x").
func cmdTarZst(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: tarzst FILE ENTRY...")
	}
	var buf bytes.Buffer
	enc, err := zstd.NewWriter(&buf)
	ts.Check(err)
	tw := tar.NewWriter(enc)
	mtime := time.Unix(1700000000, 0)
	for _, e := range args[1:] {
		mode := int64(0o644)
		if m, rest, ok := strings.Cut(e, " "); ok {
			n, err := strconv.ParseInt(m, 8, 64)
			ts.Check(err)
			mode, e = n, rest
		}
		if before, rest, ok := strings.Cut(e, "{"); ok {
			n, after, _ := strings.Cut(rest, "}")
			depth, err := strconv.Atoi(n)
			ts.Check(err)
			e = before + strings.Repeat("d/", depth) + after
		}
		if name, target, ok := strings.Cut(e, "->"); ok {
			ts.Check(tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: mtime}))
		} else if name, target, ok := strings.Cut(e, "=>"); ok {
			ts.Check(tw.WriteHeader(&tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o644, ModTime: mtime}))
		} else if name, text, ok := strings.Cut(e, "="); ok {
			ts.Check(tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(text)), Mode: mode, ModTime: mtime}))
			_, err := tw.Write([]byte(text))
			ts.Check(err)
		} else if strings.HasSuffix(e, "/") {
			ts.Check(tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: e, Mode: 0o777, ModTime: mtime}))
		} else {
			ts.Fatalf("tarzst: %q is not NAME=TEXT, NAME->TARGET, NAME=>TARGET or NAME/", e)
		}
	}
	ts.Check(tw.Close())
	ts.Check(enc.Close())
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), buf.Bytes(), 0o644))
}

// cmdWithin runs another script command and fails if it takes DURATION or
// longer. It checks that something does not hang, not how fast it is:
//
//	within DURATION exits N command [args...]
func cmdWithin(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 3 {
		ts.Fatalf("usage: within DURATION exits N command [args...]")
	}
	limit, err := time.ParseDuration(args[0])
	ts.Check(err)
	cmds := map[string]func(*testscript.TestScript, bool, []string){"exits": cmdExits}
	cmd := cmds[args[1]]
	if cmd == nil {
		ts.Fatalf("within: cannot run %q; known: exits", args[1])
	}
	start := time.Now()
	cmd(ts, false, args[2:])
	if took := time.Since(start); took >= limit {
		ts.Fatalf("within: %s took %s, want less than %s", args[1], took.Round(time.Millisecond), limit)
	}
}
