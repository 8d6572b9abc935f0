package cache

import (
	"context"
	"strings"
	"testing"

	"github.com/taskrunner/taskrunner/internal/config"
)

// legacy is a Cache as config.Load makes it with only the bucket set.
func legacy(bucket string) config.Cache {
	return config.Cache{Bucket: bucket, Prefix: "taskrunner/", Region: "eu-central-1"}
}

// withURL is a Cache as config.Load makes it with only the URL set.
func withURL(u string) config.Cache {
	return config.Cache{URL: u, Prefix: "taskrunner/", Region: "eu-central-1"}
}

func TestResolve(t *testing.T) {
	s3loc := func(bucket, prefix, region, endpoint string) *location {
		return &location{s3: s3Settings{bucket: bucket, prefix: prefix, region: region, endpoint: endpoint}}
	}
	for _, tc := range []struct {
		name string
		cfg  config.Cache
		want *location
	}{
		{"nothing", config.Cache{Prefix: "taskrunner/", Region: "eu-central-1"}, nil},
		{"nothing but S3 settings", config.Cache{Endpoint: "http://x", AccessKey: "a", Prefix: "p/"}, nil},
		{"legacy", legacy("b"), s3loc("b", "taskrunner/", "eu-central-1", "")},
		{"legacy prefix kept as it is", with(legacy("b"), func(c *config.Cache) { c.Prefix = "tr-" }), s3loc("b", "tr-", "eu-central-1", "")},
		{"legacy empty prefix", with(legacy("b"), func(c *config.Cache) { c.Prefix = "" }), s3loc("b", "", "eu-central-1", "")},
		{"legacy region", with(legacy("b"), func(c *config.Cache) { c.Region = "us-west-2" }), s3loc("b", "taskrunner/", "us-west-2", "")},
		{"region defaults", config.Cache{Bucket: "b"}, s3loc("b", "", "eu-central-1", "")},
		{"legacy endpoint", with(legacy("b"), func(c *config.Cache) { c.Endpoint = "http://127.0.0.1:9000/" }), s3loc("b", "taskrunner/", "eu-central-1", "http://127.0.0.1:9000")},
		{"legacy endpoint without scheme", with(legacy("b"), func(c *config.Cache) { c.Endpoint = "minio.internal:9000" }), s3loc("b", "taskrunner/", "eu-central-1", "https://minio.internal:9000")},
		{"legacy static keys", with(legacy("b"), func(c *config.Cache) { c.AccessKey, c.SecretKey = "AK", "SK" }),
			&location{s3: s3Settings{bucket: "b", prefix: "taskrunner/", region: "eu-central-1", accessKey: "AK", secretKey: "SK"}}},

		{"url folder prefix", withURL("s3://b/team/"), s3loc("b", "team/", "eu-central-1", "")},
		{"url prefix gets a slash", withURL("s3://b/team"), s3loc("b", "team/", "eu-central-1", "")},
		{"url nested prefix", withURL("s3://b/a/b/c"), s3loc("b", "a/b/c/", "eu-central-1", "")},
		{"url no prefix", withURL("s3://b"), s3loc("b", "", "eu-central-1", "")},
		{"url root prefix", withURL("s3://b/"), s3loc("b", "", "eu-central-1", "")},
		{"url escaped prefix", withURL("s3://b/my%20team/"), s3loc("b", "my team/", "eu-central-1", "")},
		{"url region", withURL("s3://b/p?region=us-east-1"), s3loc("b", "p/", "us-east-1", "")},
		{"url endpoint", withURL("s3://b/p?endpoint=http://127.0.0.1:9000&region=us-east-1"), s3loc("b", "p/", "us-east-1", "http://127.0.0.1:9000")},
		{"url endpoint escaped", withURL("s3://b/p?endpoint=http%3A%2F%2F127.0.0.1%3A9000"), s3loc("b", "p/", "eu-central-1", "http://127.0.0.1:9000")},
		{"url endpoint beats variable", with(withURL("s3://b/p?endpoint=http://a:1"), func(c *config.Cache) { c.Endpoint = "http://b:2" }), s3loc("b", "p/", "eu-central-1", "http://a:1")},
		{"url takes endpoint variable", with(withURL("s3://b/p"), func(c *config.Cache) { c.Endpoint = "http://b:2" }), s3loc("b", "p/", "eu-central-1", "http://b:2")},

		{"file", withURL("file:///var/cache/tr"), &location{dir: "/var/cache/tr"}},
		{"file trailing slash", withURL("file:///var/cache/tr/"), &location{dir: "/var/cache/tr"}},
		{"file localhost", withURL("file://localhost/var/cache/tr"), &location{dir: "/var/cache/tr"}},
		{"file escaped", withURL("file:///var/my%20cache"), &location{dir: "/var/my cache"}},
		{"file ignores key pair rules", with(withURL("file:///x"), func(c *config.Cache) { c.AccessKey = "AK" }), &location{dir: "/x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resolve(tc.cfg)
			if err != nil {
				t.Fatalf("resolve: %v", err)
			}
			switch {
			case got == nil && tc.want == nil:
			case got == nil || tc.want == nil || *got != *tc.want:
				t.Errorf("resolve = %+v, want %+v", got, tc.want)
			}
		})
	}
}

const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

func TestResolveErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  config.Cache
		want string // the variable the message must name, and more
	}{
		{"malformed", withURL("s3://b/%zz"), "TASKRUNNER_REMOTE_CACHE_URL: not a URL"},
		{"no scheme", withURL("mybucket/prefix"), "TASKRUNNER_REMOTE_CACHE_URL: \"mybucket/prefix\" has no scheme"},
		{"unknown scheme", withURL("gs://b/p"), `TASKRUNNER_REMOTE_CACHE_URL: unknown scheme "gs"`},
		{"http scheme", withURL("https://s3.amazonaws.com/b/p"), `TASKRUNNER_REMOTE_CACHE_URL: unknown scheme "https"`},
		{"opaque", withURL("s3:b/p"), "TASKRUNNER_REMOTE_CACHE_URL: \"s3:b/p\" is not of the form s3://"},
		{"fragment", withURL("s3://b/p#x"), "TASKRUNNER_REMOTE_CACHE_URL: \"s3://b/p\"… has a fragment"},
		{"no bucket", withURL("s3:///p"), "TASKRUNNER_REMOTE_CACHE_URL: no bucket name"},
		{"port in bucket", withURL("s3://localhost:9000/b"), "TASKRUNNER_REMOTE_CACHE_URL: \"s3://localhost:9000/b\": the host of an s3 URL is the bucket"},
		{"bad bucket", withURL("s3://b!x/p"), "TASKRUNNER_REMOTE_CACHE_URL: \"b!x\" is not a bucket name"},
		{"empty segment", withURL("s3://b/a//c"), "TASKRUNNER_REMOTE_CACHE_URL: \"s3://b/a//c\": the prefix has an empty"},
		{"dot-dot segment", withURL("s3://b/a/../c"), "TASKRUNNER_REMOTE_CACHE_URL: \"s3://b/a/../c\": the prefix has"},
		{"unknown parameter", withURL("s3://b/p?use_path_style=true"), `TASKRUNNER_REMOTE_CACHE_URL: unknown parameter "use_path_style"`},
		{"empty region", withURL("s3://b/p?region="), `TASKRUNNER_REMOTE_CACHE_URL: parameter "region" needs one non-empty value`},
		{"two regions", withURL("s3://b/p?region=a&region=b"), `TASKRUNNER_REMOTE_CACHE_URL: parameter "region" needs one`},
		{"bad endpoint", withURL("s3://b/p?endpoint=ftp://x"), `TASKRUNNER_REMOTE_CACHE_URL endpoint: unknown scheme "ftp"`},
		{"endpoint without host", withURL("s3://b/p?endpoint=http://"), `TASKRUNNER_REMOTE_CACHE_URL endpoint: "http://" has no host`},
		{"file relative", withURL("file://./cache"), "TASKRUNNER_REMOTE_CACHE_URL: \"file://./cache\": a file URL needs an absolute path"},
		{"file host", withURL("file://server/share"), "a file URL needs an absolute path"},
		{"file opaque", withURL("file:cache"), "is not of the form file://"},
		{"file parameters", withURL("file:///x?create_dir=1"), "a file URL takes no parameters"},
		{"file no path", withURL("file://"), "a file URL needs an absolute path"},
		{"both", with(legacy("b"), func(c *config.Cache) { c.URL = "s3://b" }), "TASKRUNNER_REMOTE_CACHE_URL and TASKRUNNER_REMOTE_CACHE_BUCKET are both set"},
		{"legacy bad bucket", legacy("my bucket"), `TASKRUNNER_REMOTE_CACHE_BUCKET: "my bucket" is not a bucket name`},
		{"legacy bad endpoint", with(legacy("b"), func(c *config.Cache) { c.Endpoint = "ftp://x" }), `TASKRUNNER_S3_ENDPOINT: unknown scheme "ftp"`},
		{"legacy endpoint query", with(legacy("b"), func(c *config.Cache) { c.Endpoint = "http://x/?a=1" }), `TASKRUNNER_S3_ENDPOINT: an endpoint takes no parameters`},
		{"access key alone", with(legacy("b"), func(c *config.Cache) { c.AccessKey = "AK" }), "TASKRUNNER_AWS_ACCESS_KEY is set but TASKRUNNER_AWS_SECRET_KEY is empty"},
		{"secret key alone", with(legacy("b"), func(c *config.Cache) { c.SecretKey = secret }), "TASKRUNNER_AWS_SECRET_KEY is set but TASKRUNNER_AWS_ACCESS_KEY is empty"},
		{"secret key alone, url", with(withURL("s3://b"), func(c *config.Cache) { c.SecretKey = secret }), "TASKRUNNER_AWS_SECRET_KEY is set but"},
		// Credentials in a URL are refused without showing them.
		{"credentials in url", withURL("s3://AKID:" + strings.ReplaceAll(secret, "/", "%2F") + "@b/p"), "TASKRUNNER_REMOTE_CACHE_URL: must not hold credentials"},
		{"credentials in bad url", withURL("s3://AKID:" + secret + "@b/p%zz"), "TASKRUNNER_REMOTE_CACHE_URL: not a URL"},
		{"secret in a query", withURL("s3://b:1/p?endpoint=http://h&x=" + secret), `TASKRUNNER_REMOTE_CACHE_URL: "s3://b:1/p": the host`},
		{"credentials in endpoint", withURL("s3://b/p?endpoint=" + "http://AKID:" + strings.ReplaceAll(secret, "/", "%252F") + "@host"), "TASKRUNNER_REMOTE_CACHE_URL endpoint: must not hold credentials"},
		{"credentials in legacy endpoint", with(legacy("b"), func(c *config.Cache) { c.Endpoint = "http://AKID:" + strings.ReplaceAll(secret, "/", "") + "@host" }), "TASKRUNNER_S3_ENDPOINT: must not hold credentials"},
		{"credentials in unparsable legacy endpoint", with(legacy("b"), func(c *config.Cache) { c.Endpoint = "http://AKID:" + secret + "@host" }), "TASKRUNNER_S3_ENDPOINT: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resolve(tc.cfg)
			if err == nil {
				t.Fatalf("resolve = %+v, want an error", got)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q\nwant it to contain %q", msg, tc.want)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error %q is more than one line", msg)
			}
			for _, s := range []string{secret, strings.ReplaceAll(secret, "/", "%2F"), "K7MDENG"} {
				if strings.Contains(msg, s) {
					t.Errorf("error %q shows the secret key", msg)
				}
			}
			// Open says the same.
			if _, err := Open(context.Background(), tc.cfg); err == nil || err.Error() != msg {
				t.Errorf("Open: %v, want %q", err, msg)
			}
		})
	}
}

func TestOpenNothing(t *testing.T) {
	s, err := Open(context.Background(), config.Cache{Prefix: "taskrunner/", Region: "eu-central-1"})
	if s != nil || err != nil {
		t.Fatalf("Open with no bucket and no URL = %v, %v; want nil, nil", s, err)
	}
}

// TestDescribe: Describe names the store without credentials, and Open
// sends no request (the endpoints here do not exist).
func TestDescribe(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		cfg  config.Cache
		want string
	}{
		{legacy("b"), "s3://b/taskrunner/"},
		{with(legacy("b"), func(c *config.Cache) { c.Endpoint = "http://127.0.0.1:1/" }), "s3://b/taskrunner/ at http://127.0.0.1:1"},
		{withURL("s3://b/team?endpoint=https://minio.invalid&region=x"), "s3://b/team/ at https://minio.invalid"},
		{withURL("s3://b"), "s3://b/"},
		{withURL("file://" + dir + "/a%20b"), "file://" + dir + "/a%20b/"},
	} {
		tc.cfg.AccessKey, tc.cfg.SecretKey = "AKIDEXAMPLE", secret
		s, err := Open(context.Background(), tc.cfg)
		if err != nil {
			t.Fatalf("Open(%+v): %v", tc.cfg.URL, err)
		}
		if got := s.Describe(); got != tc.want {
			t.Errorf("Describe() = %q, want %q", got, tc.want)
		}
		if d := s.Describe(); strings.Contains(d, secret) || strings.Contains(d, "AKIDEXAMPLE") {
			t.Errorf("Describe() = %q shows a credential", d)
		}
		s.Close()
	}
}

// with returns c changed by f.
func with(c config.Cache, f func(*config.Cache)) config.Cache { f(&c); return c }
