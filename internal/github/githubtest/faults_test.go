package githubtest

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestFailThenSucceed(t *testing.T) {
	s := newServer(t)
	tok := mint(t, s).Token
	s.Fail("POST /repos/", http.StatusBadGateway, 2)
	if s.FaultsLeft() != 2 {
		t.Errorf("FaultsLeft = %d, want 2", s.FaultsLeft())
	}
	// Another method on the same path is not matched.
	if a := do(t, "GET", listURL(s, shaA), "token "+tok, ""); a.status != 200 {
		t.Errorf("GET during POST faults: %d %s", a.status, a.body)
	}
	for i, want := range []int{502, 502, 201, 201} {
		a := postStatus(t, s, tok, shaA, `{"state":"success"}`)
		if a.status != want {
			t.Errorf("post %d: %d %s, want %d", i, a.status, a.body, want)
		}
		if want == 502 && a.message(t) != "Server Error" {
			t.Errorf("post %d: body %s", i, a.body)
		}
	}
	if n := len(s.Statuses("octo", "repo", shaA)); n != 2 {
		t.Errorf("%d statuses stored, want 2: failed posts store nothing", n)
	}
	if s.FaultsLeft() != 0 {
		t.Errorf("FaultsLeft = %d, want 0", s.FaultsLeft())
	}
	var faults []string
	for _, c := range s.Calls() {
		if c.Fault {
			faults = append(faults, c.String())
		}
	}
	if len(faults) != 2 || !strings.HasPrefix(faults[0], "POST /repos/octo/repo/statuses/"+shaA+" 502 token") {
		t.Errorf("calls answered by faults: %q", faults)
	}
}

func TestRateLimit(t *testing.T) {
	s := newServer(t)
	s.RateLimit("/app/", 1, 1500*time.Millisecond)
	a := do(t, "POST", tokenURL(s), "Bearer "+appJWT(t, s), "")
	if a.status != http.StatusTooManyRequests {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	if got := a.header.Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After %q, want 2 (1.5 s rounded up)", got)
	}
	if got := a.header.Get("X-RateLimit-Remaining"); got != "0" {
		t.Errorf("X-RateLimit-Remaining %q, want 0", got)
	}
	if !strings.Contains(a.message(t), "secondary rate limit") {
		t.Errorf("body %s", a.body)
	}
	if s.Mints() != 0 {
		t.Errorf("a rate-limited request minted a token")
	}
	mint(t, s)

	// Fail with 429 gives the primary rate limit answer, without Retry-After.
	s.Fail("", http.StatusTooManyRequests, 1)
	a = do(t, "POST", tokenURL(s), "Bearer "+appJWT(t, s), "")
	if a.status != 429 || a.header.Get("Retry-After") != "" || a.header.Get("X-RateLimit-Reset") == "" ||
		!strings.HasPrefix(a.message(t), "API rate limit exceeded") {
		t.Errorf("primary rate limit: %d %v %s", a.status, a.header, a.body)
	}
}

func TestInjectCustomFault(t *testing.T) {
	s := newServer(t)
	tok := mint(t, s).Token
	s.Inject(Fault{
		Match:  "POST /repos/octo/",
		If:     func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, shaB) },
		Times:  -1,
		Status: http.StatusServiceUnavailable,
		Header: http.Header{"Retry-After": {"3"}},
		Body:   "<html>unicorn</html>",
	})
	if s.FaultsLeft() != 0 {
		t.Errorf("FaultsLeft counts a fault without end: %d", s.FaultsLeft())
	}
	for range 3 {
		a := postStatus(t, s, tok, shaB, `{"state":"success"}`)
		if a.status != 503 || a.header.Get("Retry-After") != "3" || string(a.body) != "<html>unicorn</html>" {
			t.Errorf("custom fault: %d %v %s", a.status, a.header, a.body)
		}
	}
	if a := postStatus(t, s, tok, shaA, `{"state":"success"}`); a.status != 201 {
		t.Errorf("request the If function refuses: %d %s", a.status, a.body)
	}
	s.ClearFaults()
	if a := postStatus(t, s, tok, shaB, `{"state":"success"}`); a.status != 201 {
		t.Errorf("after ClearFaults: %d %s", a.status, a.body)
	}
	s.Inject(Fault{Status: 500}) // Times 0: no fault
	if a := postStatus(t, s, tok, shaB, `{"state":"success"}`); a.status != 201 {
		t.Errorf("after a fault with Times 0: %d %s", a.status, a.body)
	}
}

func TestHangUp(t *testing.T) {
	s := newServer(t)
	tok := mint(t, s).Token
	s.HangUp("POST /repos/", 1)
	if _, err := tryDo(http.DefaultClient, "POST", statusURL(s, shaA), "token "+tok, `{"state":"success"}`); err == nil {
		t.Error("request to a hung-up connection succeeded")
	}
	if a := postStatus(t, s, tok, shaA, `{"state":"success"}`); a.status != 201 {
		t.Errorf("after the hang-up: %d %s", a.status, a.body)
	}
	if n := len(s.Statuses("octo", "repo", shaA)); n != 1 {
		t.Errorf("%d statuses stored, want 1", n)
	}
}

func TestDelay(t *testing.T) {
	s := newServer(t)
	s.Delay(time.Second)
	impatient := &http.Client{Timeout: 50 * time.Millisecond}
	if _, err := tryDo(impatient, "GET", s.URL+"/", "", ""); err == nil {
		t.Error("a client that waits 50 ms got an answer delayed by 1 s")
	}
	s.Delay(0)
	if a, err := tryDo(impatient, "GET", s.URL+"/", "", ""); err != nil || a.status != 404 {
		t.Errorf("after Delay(0): %v %d", err, a.status)
	}
}

func TestDelayNext(t *testing.T) {
	s := newServer(t)
	s.DelayNext("GET /x", 1, time.Second)
	impatient := &http.Client{Timeout: 50 * time.Millisecond}
	if _, err := tryDo(impatient, "GET", s.URL+"/y", "", ""); err != nil {
		t.Errorf("a request that does not match was delayed: %v", err)
	}
	if s.FaultsLeft() != 1 {
		t.Fatalf("FaultsLeft = %d before the delayed request, want 1", s.FaultsLeft())
	}
	if _, err := tryDo(impatient, "GET", s.URL+"/x", "", ""); err == nil {
		t.Error("a client that waits 50 ms got an answer delayed by 1 s")
	}
	if s.FaultsLeft() != 0 {
		t.Errorf("FaultsLeft = %d once the delayed request arrived, want 0", s.FaultsLeft())
	}
	// The next one is answered at once, by the API.
	a, err := tryDo(impatient, "GET", s.URL+"/x", "", "")
	if err != nil || a.status != 404 {
		t.Errorf("after the delayed request: %v %d", err, a.status)
	}
	for _, c := range s.Calls() {
		if c.Fault {
			t.Errorf("a delayed request is recorded as a fault: %v", c)
		}
	}
}
