package githubtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestCreateStatus(t *testing.T) {
	s := newServer(t)
	tok := mint(t, s).Token
	a := postStatus(t, s, tok, shaA, `{"state":"failure","target_url":"https://ci.example/1","description":"build failed","context":"build"}`)
	if a.status != http.StatusCreated {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	var got map[string]any
	if err := json.Unmarshal(a.body, &got); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{
		"state": "failure", "target_url": "https://ci.example/1", "description": "build failed", "context": "build",
		"url": s.URL + "/repos/octo/repo/statuses/" + shaA,
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	for _, k := range []string{"id", "node_id", "avatar_url", "created_at", "updated_at", "creator"} {
		if got[k] == nil {
			t.Errorf("%s missing in %s", k, a.body)
		}
	}
	if c, _ := got["creator"].(map[string]any); c["type"] != "Bot" {
		t.Errorf("creator %v is not the App's bot", got["creator"])
	}
	if ts, _ := got["created_at"].(string); !strings.HasSuffix(ts, "Z") || strings.Contains(ts, ".") {
		t.Errorf("created_at %q is not UTC in whole seconds", ts)
	}
	if a.header.Get("Location") != got["url"] {
		t.Errorf("Location %q", a.header.Get("Location"))
	}

	// Unset fields: context defaults to "default", the others are null.
	a = do(t, "POST", statusURL(s, strings.ToUpper(shaA)), "Bearer "+tok, `{"state":"pending","description":null}`)
	if a.status != http.StatusCreated {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	got = nil
	json.Unmarshal(a.body, &got)
	if got["context"] != "default" || got["description"] != nil || got["target_url"] != nil {
		t.Errorf("unset fields: %s", a.body)
	}
	if _, ok := got["description"]; !ok {
		t.Errorf("description absent instead of null: %s", a.body)
	}
	if n := len(s.Statuses("Octo", "Repo", shaA)); n != 2 {
		t.Errorf("%d statuses stored, want 2 (owner, repo and sha are case-insensitive)", n)
	}
}

func TestCreateStatusRefusals(t *testing.T) {
	s := newServer(t)
	tok := mint(t, s).Token
	for _, tc := range []struct {
		name, auth, sha, body string
		status                int
		message               string
		field                 string // of the Validation Failed error
	}{
		{"bad state", "token " + tok, shaA, `{"state":"ok"}`, 422, "Validation Failed", "state"},
		{"missing state", "token " + tok, shaA, `{"context":"x"}`, 422, "Validation Failed", "state"},
		{"description of 141 characters", "token " + tok, shaA,
			jsonBody(t, map[string]string{"state": "success", "description": strings.Repeat("é", 141)}), 422, "Validation Failed", "description"},
		{"state not a string", "token " + tok, shaA, `{"state":1}`, 422, "", ""},
		{"malformed JSON", "token " + tok, shaA, `{"state":`, 400, "Problems parsing JSON", ""},
		{"branch name for sha", "token " + tok, "main", `{"state":"success"}`, 422, "No commit found for SHA: main", ""},
		{"short sha", "token " + tok, shaA[:7], `{"state":"success"}`, 422, "No commit found for SHA: " + shaA[:7], ""},
		{"no Authorization", "", shaA, `{"state":"success"}`, 401, msgRequiresAuth, ""},
		{"unknown token", "token ghs_000000000000000000000000000000000000", shaA, `{"state":"success"}`, 401, msgBadCredentials, ""},
		{"App JWT instead of a token", "Bearer " + appJWT(t, s), shaA, `{"state":"success"}`, 401, msgBadCredentials, ""},
		{"basic auth", "Basic eDp5", shaA, `{"state":"success"}`, 401, msgBadCredentials, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := do(t, "POST", statusURL(s, tc.sha), tc.auth, tc.body)
			if a.status != tc.status {
				t.Fatalf("status %d, want %d: %s", a.status, tc.status, a.body)
			}
			var e apiError
			if err := json.Unmarshal(a.body, &e); err != nil {
				t.Fatal(err)
			}
			if tc.message != "" && e.Message != tc.message {
				t.Errorf("message %q, want %q", e.Message, tc.message)
			}
			if tc.field != "" && (len(e.Errors) != 1 || e.Errors[0].Field != tc.field || e.Errors[0].Resource != "Status") {
				t.Errorf("errors %+v, want one on %s", e.Errors, tc.field)
			}
		})
	}
	if n := len(s.Statuses("octo", "repo", shaA)); n != 0 {
		t.Errorf("%d statuses stored by refused requests", n)
	}
	ok := jsonBody(t, map[string]string{"state": "success", "description": strings.Repeat("é", 140)})
	if a := postStatus(t, s, tok, shaA, ok); a.status != 201 {
		t.Errorf("description of 140 characters: %d %s", a.status, a.body)
	}
}

func TestListStatusesNewestFirst(t *testing.T) {
	s := newServer(t)
	tok := mint(t, s).Token
	for _, st := range []string{"pending", "failure", "success"} {
		postStatus(t, s, tok, shaA, fmt.Sprintf(`{"state":%q,"context":"build"}`, st))
	}
	postStatus(t, s, tok, shaB, `{"state":"error","context":"build"}`)

	a := do(t, "GET", listURL(s, shaA), "token "+tok, "")
	if a.status != http.StatusOK {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	var listed []Status
	if err := json.Unmarshal(a.body, &listed); err != nil {
		t.Fatal(err)
	}
	var states []string
	for _, st := range listed {
		states = append(states, st.State)
	}
	if got := strings.Join(states, " "); got != "success failure pending" {
		t.Errorf("listed %q, want newest first: success failure pending", got)
	}
	stored := s.Statuses("octo", "repo", shaA)
	if len(stored) != 3 || stored[0].ID != listed[0].ID || stored[2].State != "pending" {
		t.Errorf("Statuses() = %+v, want what the API lists", stored)
	}

	a = do(t, "GET", listURL(s, "1111111111111111111111111111111111111111"), "Bearer "+tok, "")
	if a.status != 200 || strings.TrimSpace(string(a.body)) != "[]" {
		t.Errorf("commit without statuses: %d %s, want 200 []", a.status, a.body)
	}
	if a := do(t, "GET", listURL(s, shaA), "token ghs_unknown", ""); a.status != 401 || a.message(t) != msgBadCredentials {
		t.Errorf("unknown token: %d %s", a.status, a.body)
	}
	if a := do(t, "GET", listURL(s, "main"), "token "+tok, ""); a.status != 422 {
		t.Errorf("branch name: %d %s", a.status, a.body)
	}
}

func TestListStatusesPages(t *testing.T) {
	s := newServer(t)
	tok := mint(t, s).Token
	const total = 105
	for i := range total {
		if a := postStatus(t, s, tok, shaA, fmt.Sprintf(`{"state":"success","context":"c%d"}`, i)); a.status != 201 {
			t.Fatalf("post %d: %d %s", i, a.status, a.body)
		}
	}
	for _, tc := range []struct {
		query       string
		first, n    int // context number of the first status listed, and how many
		next, prevs bool
	}{
		{"", 104, 30, true, false},
		{"?page=2", 74, 30, true, true},
		{"?per_page=50&page=3", 4, 5, false, true},
		{"?per_page=1000", 104, 100, true, false},
		{"?per_page=100&page=2", 4, 5, false, true},
		{"?page=9", 0, 0, false, true},
		{"?per_page=x&page=0", 104, 30, true, false},
	} {
		t.Run(tc.query, func(t *testing.T) {
			a := do(t, "GET", listURL(s, shaA)+tc.query, "token "+tok, "")
			var listed []Status
			if err := json.Unmarshal(a.body, &listed); err != nil || a.status != 200 {
				t.Fatalf("%d %s: %v", a.status, a.body, err)
			}
			if len(listed) != tc.n || (tc.n > 0 && listed[0].Context != fmt.Sprintf("c%d", tc.first)) {
				t.Errorf("got %d statuses starting %v, want %d starting c%d", len(listed), listed[:min(1, len(listed))], tc.n, tc.first)
			}
			link := a.header.Get("Link")
			if strings.Contains(link, `rel="next"`) != tc.next || strings.Contains(link, `rel="prev"`) != tc.prevs {
				t.Errorf("Link %q", link)
			}
		})
	}
}

func TestStatusLimitPerContext(t *testing.T) {
	s := newServer(t)
	tok := mint(t, s).Token
	// Fill the store directly: 1000 requests would only slow the test.
	s.mu.Lock()
	key := statusKey("octo", "repo", shaA)
	for range maxStatusesPerSHACtx {
		s.statuses[key] = append(s.statuses[key], Status{State: "success", Context: "build", CreatedAt: time.Now()})
	}
	s.mu.Unlock()
	if a := postStatus(t, s, tok, shaA, `{"state":"success","context":"build"}`); a.status != 422 {
		t.Errorf("status 1001 for a context: %d %s, want 422", a.status, a.body)
	}
	if a := postStatus(t, s, tok, shaA, `{"state":"success","context":"test"}`); a.status != 201 {
		t.Errorf("another context: %d %s", a.status, a.body)
	}
}
