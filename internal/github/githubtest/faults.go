package githubtest

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Fault is an answer the server gives in place of the API's, to test a
// client against GitHub's outages, rate limits and network failures.
type Fault struct {
	// Match selects requests by method and path prefix: "POST /repos/",
	// "/app/" (any method), or "" (every request).
	Match string
	// If, when set, must also accept the request for the fault to apply.
	If func(*http.Request) bool
	// Times is how many matching requests the fault answers; a negative
	// Times answers every one until ClearFaults, and 0 none.
	Times int
	// Status is the status answered.
	Status int
	// Header holds headers added to the answer, like Retry-After.
	Header http.Header
	// Body is the answer's body; when empty it is GitHub's JSON error body
	// for Status.
	Body string
	// HangUp closes the connection without answering, as a network failure
	// does; Status, Header and Body are then unused. Go's HTTP client may
	// silently retry an idempotent request once on such a failure, which
	// uses up another of Times.
	HangUp bool
	// Delay holds the answer back this long, or until the client gives up.
	// With Status 0 and no HangUp, the answer is then the API's own: the
	// fault only slows the request down.
	Delay time.Duration
}

// DelayNext makes the next n requests matching match wait d (or until
// their client gives up) before they are answered as usual. FaultsLeft
// tells when they have arrived.
func (s *Server) DelayNext(match string, n int, d time.Duration) {
	s.Inject(Fault{Match: match, Times: n, Delay: d})
}

// Inject arms a fault. Faults apply in the order they were injected: a
// request gets the first armed fault that matches it.
func (s *Server) Inject(f Fault) {
	if f.Times == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// Fail makes the next n requests matching match (see Fault.Match) get
// status with GitHub's JSON error body for it, e.g. Fail("POST /repos/",
// 502, 2). A negative n fails every matching request until ClearFaults.
func (s *Server) Fail(match string, status, n int) {
	s.Inject(Fault{Match: match, Status: status, Times: n})
}

// RateLimit makes the next n requests matching match get GitHub's 429
// secondary rate limit answer, with a Retry-After header of retryAfter
// rounded up to whole seconds.
func (s *Server) RateLimit(match string, n int, retryAfter time.Duration) {
	secs := int(math.Ceil(retryAfter.Seconds()))
	s.Inject(Fault{
		Match:  match,
		Status: http.StatusTooManyRequests,
		Times:  n,
		Header: http.Header{"Retry-After": {strconv.Itoa(secs)}},
		Body: `{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",` +
			`"documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",` +
			`"status":"429"}`,
	})
}

// HangUp makes the next n requests matching match fail at the network
// level: the server closes the connection without answering.
func (s *Server) HangUp(match string, n int) {
	s.Inject(Fault{Match: match, Times: n, HangUp: true})
}

// ClearFaults disarms every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// FaultsLeft returns how many more requests the armed faults will answer,
// not counting faults armed with a negative Times. A test can check it is 0
// to be sure the client made every request it was meant to.
func (s *Server) FaultsLeft() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, f := range s.faults {
		if f.Times > 0 {
			n += f.Times
		}
	}
	return n
}

// takeFault returns the fault that answers r, if any, and uses it up once.
func (s *Server) takeFault(r *http.Request) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if !f.matches(r) {
			continue
		}
		answer := *f
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			}
		}
		return &answer
	}
	return nil
}

func (f *Fault) matches(r *http.Request) bool {
	method, prefix, found := strings.Cut(f.Match, " ")
	if !found {
		method, prefix = "", f.Match
	}
	if method != "" && !strings.EqualFold(method, r.Method) {
		return false
	}
	if !strings.HasPrefix(r.URL.Path, prefix) {
		return false
	}
	return f.If == nil || f.If(r)
}

// answerFault writes the fault's answer to w, or hangs up through raw, the
// server's own ResponseWriter, which can hijack the connection.
func (s *Server) answerFault(w, raw http.ResponseWriter, f *Fault) {
	if f.HangUp {
		hj, ok := raw.(http.Hijacker)
		if !ok {
			panic("githubtest: cannot hang up: the ResponseWriter is not a Hijacker")
		}
		conn, _, err := hj.Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	h := w.Header()
	if f.Status == http.StatusTooManyRequests {
		// GitHub's primary rate limit headers; a secondary limit adds Retry-After.
		h.Set("X-RateLimit-Limit", "5000")
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Used", "5000")
		h.Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10))
		h.Set("X-RateLimit-Resource", "core")
	}
	for k, vs := range f.Header {
		h[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
	}
	if f.Body != "" {
		w.WriteHeader(f.Status)
		fmt.Fprint(w, f.Body)
		return
	}
	writeError(w, f.Status, s.faultMessage(f.Status))
}

// faultMessage is GitHub's error message for a status.
func (s *Server) faultMessage(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return msgBadCredentials
	case http.StatusForbidden:
		return "Resource not accessible by integration"
	case http.StatusNotFound:
		return "Not Found"
	case http.StatusUnprocessableEntity:
		return "Validation Failed"
	case http.StatusTooManyRequests:
		return fmt.Sprintf("API rate limit exceeded for installation ID %d.", s.InstallationID)
	case http.StatusInternalServerError, http.StatusBadGateway:
		return "Server Error"
	case http.StatusGatewayTimeout:
		return "We couldn't respond to your request in time. Sorry about that. " +
			"Please try resubmitting your request and contact us if the problem persists."
	}
	return http.StatusText(status)
}

// PrimaryLimit makes the next n matching requests answer as GitHub does
// when the installation's primary rate limit is spent: 403 with
// x-ratelimit-remaining 0 and x-ratelimit-reset reset from now, and no
// Retry-After.
func (s *Server) PrimaryLimit(match string, n int, reset time.Duration) {
	s.Inject(Fault{
		Match:  match,
		Status: http.StatusForbidden,
		Times:  n,
		Header: http.Header{
			"X-Ratelimit-Limit":     {"5000"},
			"X-Ratelimit-Remaining": {"0"},
			"X-Ratelimit-Used":      {"5000"},
			"X-Ratelimit-Reset":     {strconv.FormatInt(time.Now().Add(reset).Unix(), 10)},
			"X-Ratelimit-Resource":  {"core"},
		},
		Body: fmt.Sprintf(`{"message":"API rate limit exceeded for installation ID %d. If you reach out to GitHub Support for help, please include the request ID.",`+
			`"documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api","status":"403"}`, s.InstallationID),
	})
}

// SecondaryLimit makes the next n matching requests answer 403 for a
// secondary rate limit without Retry-After, which GitHub may: the client
// is to wait at least a minute.
func (s *Server) SecondaryLimit(match string, n int) {
	s.Inject(Fault{
		Match:  match,
		Status: http.StatusForbidden,
		Times:  n,
		Body: `{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",` +
			`"documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits","status":"403"}`,
	})
}
