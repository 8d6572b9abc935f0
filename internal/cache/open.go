package cache

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/taskrunner/taskrunner/internal/config"
)

// Names of the settings Open reads, for its messages.
const (
	envURL       = "TASKRUNNER_REMOTE_CACHE_URL"
	envBucket    = "TASKRUNNER_REMOTE_CACHE_BUCKET"
	envEndpoint  = "TASKRUNNER_S3_ENDPOINT"
	envAccessKey = "TASKRUNNER_AWS_ACCESS_KEY"
	envSecretKey = "TASKRUNNER_AWS_SECRET_KEY"
)

// defaultRegion is SPEC §10's, for a Cache not made by config.Load.
const defaultRegion = "eu-central-1"

// Open returns the store that cfg names, or a nil Store and a nil error when
// it names none (neither a bucket nor a URL). It sends no request: an
// unreachable endpoint, a missing bucket or a refused credential shows on
// the first operation.
//
// The store is either
//
//   - TASKRUNNER_REMOTE_CACHE_URL=s3://bucket/prefix?region=R&endpoint=E:
//     the URL's path is a folder ("s3://b/team" and "s3://b/team/" both
//     put keys under "team/"; "s3://b" at the top of the bucket) and
//     replaces TASKRUNNER_REMOTE_CACHE_PREFIX; region and endpoint, when
//     given, replace TASKRUNNER_AWS_REGION and TASKRUNNER_S3_ENDPOINT;
//   - TASKRUNNER_REMOTE_CACHE_URL=file:///abs/path: a local folder, created
//     if missing (see openFolder for what it holds);
//   - or, with no URL, the bucket TASKRUNNER_REMOTE_CACHE_BUCKET with keys
//     under TASKRUNNER_REMOTE_CACHE_PREFIX taken as it is (SPEC §10).
//
// For S3, an endpoint (an http:// or https:// URL, https:// when it has no
// scheme) means an S3-compatible server, addressed path-style.
// TASKRUNNER_AWS_ACCESS_KEY and TASKRUNNER_AWS_SECRET_KEY, both or neither,
// are static credentials; without them the AWS SDK's default chain applies
// (AWS_* variables, shared config files, web identity, instance role).
// Credentials never go in the URL.
//
// A setting Open cannot use is an error on one line that names the variable
// and never shows a credential.
func Open(ctx context.Context, cfg config.Cache) (Store, error) {
	return open(ctx, cfg, defaultLimits)
}

// Locate is Open for a caller that places keys itself and opens the store
// only when it needs it: it checks cfg at once, without opening anything,
// and returns the function that opens the store (the whole bucket, or
// folder) and the prefix under which Open's store would have put its keys.
// Task logs live beside the cache, under their own prefix, in the same
// bucket. A nil open means no remote cache is set.
//
// Opening an S3 store with the AWS credential chain reads the AWS
// configuration, a few milliseconds that a task skipped by its local hash
// should not pay.
func Locate(cfg config.Cache) (open func(context.Context) (Store, error), prefix string, err error) {
	loc, err := resolve(cfg)
	if err != nil || loc == nil {
		return nil, "", err
	}
	if loc.dir != "" {
		return func(context.Context) (Store, error) { return openFolder(loc.dir) }, "", nil
	}
	prefix, loc.s3.prefix = loc.s3.prefix, ""
	return func(ctx context.Context) (Store, error) { return openS3(ctx, loc.s3, defaultLimits) }, prefix, nil
}

// open is Open with the network limits as a parameter, for tests.
func open(ctx context.Context, cfg config.Cache, lim limits) (Store, error) {
	loc, err := resolve(cfg)
	if err != nil || loc == nil {
		return nil, err
	}
	if loc.dir != "" {
		return openFolder(loc.dir)
	}
	return openS3(ctx, loc.s3, lim)
}

// location is where a store is: a folder (dir) or an S3 bucket (s3).
type location struct {
	dir string
	s3  s3Settings
}

// resolve turns the settings into a location, nil when none is set.
func resolve(cfg config.Cache) (*location, error) {
	if cfg.URL == "" && cfg.Bucket == "" {
		return nil, nil
	}
	if cfg.URL != "" && cfg.Bucket != "" {
		return nil, fmt.Errorf("%s and %s are both set: keep one", envURL, envBucket)
	}
	st := s3Settings{
		bucket: cfg.Bucket,
		prefix: cfg.Prefix,
		region: cfg.Region,
	}
	endpointVar := envEndpoint
	endpoint := cfg.Endpoint
	if cfg.URL != "" {
		u, err := parseURL(cfg.URL)
		if err != nil {
			return nil, err
		}
		if u.Scheme == "file" {
			return &location{dir: path.Clean(u.Path)}, nil
		}
		st.bucket = u.Host
		st.prefix = strings.TrimPrefix(u.Path, "/")
		if st.prefix != "" && !strings.HasSuffix(st.prefix, "/") {
			st.prefix += "/"
		}
		q := u.Query()
		if r := q.Get("region"); r != "" {
			st.region = r
		}
		if e := q.Get("endpoint"); e != "" {
			endpoint, endpointVar = e, envURL+" endpoint"
		}
	} else if err := checkBucket(envBucket, cfg.Bucket); err != nil {
		return nil, err
	}
	if st.region == "" {
		st.region = defaultRegion
	}
	if endpoint != "" {
		e, err := normalizeEndpoint(endpointVar, endpoint)
		if err != nil {
			return nil, err
		}
		st.endpoint = e
	}
	switch {
	case cfg.AccessKey != "" && cfg.SecretKey == "":
		return nil, fmt.Errorf("%s is set but %s is empty: set both, or neither to use the AWS credential chain", envAccessKey, envSecretKey)
	case cfg.AccessKey == "" && cfg.SecretKey != "":
		return nil, fmt.Errorf("%s is set but %s is empty: set both, or neither to use the AWS credential chain", envSecretKey, envAccessKey)
	}
	st.accessKey, st.secretKey = cfg.AccessKey, cfg.SecretKey
	return &location{s3: st}, nil
}

const urlForms = "want s3://bucket/prefix?region=…&endpoint=… or file:///absolute/path"

// parseURL parses and checks TASKRUNNER_REMOTE_CACHE_URL. Its errors show
// the value only when it cannot hold a credential.
func parseURL(raw string) (*url.URL, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s: "+format, append([]any{envURL}, args...)...)
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, bad("not a URL (%v); %s", err, urlForms)
	}
	if u.User != nil {
		return nil, bad("must not hold credentials: use %s and %s", envAccessKey, envSecretKey)
	}
	// Shown in messages: no user info (refused above), query or fragment,
	// where a credential could hide.
	shown := (&url.URL{Scheme: u.Scheme, Opaque: u.Opaque, Host: u.Host, Path: u.Path, RawPath: u.RawPath}).String()
	switch {
	case u.Scheme == "":
		return nil, bad("%q has no scheme; %s", shown, urlForms)
	case u.Scheme != "s3" && u.Scheme != "file":
		return nil, bad("unknown scheme %q; %s", u.Scheme, urlForms)
	case u.Opaque != "":
		return nil, bad("%q is not of the form %s://…; %s", shown, u.Scheme, urlForms)
	case u.Fragment != "" || strings.HasSuffix(raw, "#"):
		return nil, bad("%q… has a fragment (#…); %s", shown, urlForms)
	}

	if u.Scheme == "file" {
		switch {
		case u.Host != "" && u.Host != "localhost":
			return nil, bad("%q: a file URL needs an absolute path, as in file:///var/cache/taskrunner", shown)
		case u.RawQuery != "":
			return nil, bad("%q: a file URL takes no parameters", shown)
		case u.Path == "" || !strings.HasPrefix(u.Path, "/"):
			return nil, bad("%q: a file URL needs an absolute path, as in file:///var/cache/taskrunner", shown)
		}
		return u, nil
	}

	if u.Port() != "" {
		return nil, bad("%q: the host of an s3 URL is the bucket; give a server as ?endpoint=http://host:port", shown)
	}
	if err := checkBucket(envURL, u.Host); err != nil {
		return nil, err
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		for _, seg := range strings.Split(p, "/") {
			if seg == "" || seg == "." || seg == ".." {
				return nil, bad("%q: the prefix has an empty, \".\" or \"..\" segment", shown)
			}
		}
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, bad("%q: bad parameters", shown)
	}
	for k, vs := range q {
		switch {
		case k != "region" && k != "endpoint":
			return nil, bad("unknown parameter %q (known: region, endpoint)", k)
		case len(vs) != 1 || vs[0] == "":
			return nil, bad("parameter %q needs one non-empty value", k)
		}
	}
	return u, nil
}

// checkBucket checks a bucket name from the setting name. S3's rules are
// stricter (and older buckets laxer); this catches what would make a broken
// request or a confusing message.
func checkBucket(name, bucket string) error {
	if bucket == "" {
		return fmt.Errorf("%s: no bucket name", name)
	}
	for _, r := range bucket {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return fmt.Errorf("%s: %q is not a bucket name", name, bucket)
		}
	}
	return nil
}

// normalizeEndpoint checks an S3 endpoint and returns it with a scheme
// (https:// when it had none) and without a trailing slash.
func normalizeEndpoint(name, raw string) (string, error) {
	s := raw
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%s: not a URL; want http://host:port or https://host", name)
	}
	switch {
	case u.User != nil:
		return "", fmt.Errorf("%s: must not hold credentials: use %s and %s", name, envAccessKey, envSecretKey)
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%s: unknown scheme %q; want http://host:port or https://host", name, u.Scheme)
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("%s: %q has no host; want http://host:port or https://host", name, raw)
	case u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("%s: an endpoint takes no parameters (?…) or fragment (#…)", name)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}
