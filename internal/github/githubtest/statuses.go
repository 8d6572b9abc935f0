package githubtest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits GitHub puts on commit statuses.
const (
	maxDescription       = 140  // characters
	maxStatusesPerSHACtx = 1000 // statuses per sha and context
	defaultPerPage       = 30
	maxPerPage           = 100
)

// statusDocURL is the documentation_url of 422 answers to a status create.
const statusDocURL = "https://docs.github.com/rest/commits/statuses#create-a-commit-status"

var shaPattern = regexp.MustCompile(`^[0-9a-fA-F]{40}$`)

// Status is a commit status as GitHub stores and returns it.
type Status struct {
	URL         string    `json:"url"`
	AvatarURL   string    `json:"avatar_url"`
	ID          int64     `json:"id"`
	NodeID      string    `json:"node_id"`
	State       string    `json:"state"`
	Description *string   `json:"description"`
	TargetURL   *string   `json:"target_url"`
	Context     string    `json:"context"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	Creator     User      `json:"creator"`
}

// User is the creator of a status: the App's bot user.
type User struct {
	Login     string `json:"login"`
	ID        int64  `json:"id"`
	NodeID    string `json:"node_id"`
	AvatarURL string `json:"avatar_url"`
	URL       string `json:"url"`
	HTMLURL   string `json:"html_url"`
	Type      string `json:"type"`
	SiteAdmin bool   `json:"site_admin"`
}

// statusKey names the statuses of one commit; GitHub's owner and repo
// names are case-insensitive.
func statusKey(owner, repo, sha string) string {
	return strings.ToLower(owner + "/" + repo + "@" + sha)
}

// Statuses returns the statuses stored for a commit, newest first, as
// GET /repos/{owner}/{repo}/commits/{sha}/statuses lists them.
func (s *Server) Statuses(owner, repo, sha string) []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return newestFirst(s.statuses[statusKey(owner, repo, sha)])
}

func newestFirst(stored []Status) []Status {
	out := make([]Status, len(stored))
	for i, st := range stored {
		out[len(stored)-1-i] = st
	}
	return out
}

// createStatus serves POST /repos/{owner}/{repo}/statuses/{sha}.
func (s *Server) createStatus(w http.ResponseWriter, r *http.Request, c *Call, owner, repo, sha string) {
	mint, status, msg := s.authenticate(r)
	c.TokenMint = mint
	if status != 0 {
		writeError(w, status, msg)
		return
	}
	if !shaPattern.MatchString(sha) {
		writeError(w, http.StatusUnprocessableEntity, "No commit found for SHA: "+sha)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	var fields map[string]json.RawMessage
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, &fields); err != nil {
		writeError(w, http.StatusBadRequest, "Problems parsing JSON")
		return
	}
	var (
		state, targetURL, description, context *string
		bad                                    []string
	)
	for _, f := range []struct {
		name string
		dst  **string
	}{{"state", &state}, {"target_url", &targetURL}, {"description", &description}, {"context", &context}} {
		v, err := optionalString(fields[f.name])
		if err != nil {
			bad = append(bad, f.name)
		}
		*f.dst = v
	}
	if len(bad) > 0 {
		writeError(w, http.StatusUnprocessableEntity,
			fmt.Sprintf("Invalid request.\n\nFor 'properties/%s', %s is not a string.", bad[0], fields[bad[0]]))
		return
	}
	ctx := "default"
	if context != nil {
		ctx = *context
	}

	var errs []fieldError
	switch {
	case state == nil:
		errs = append(errs, fieldError{Resource: "Status", Code: "missing_field", Field: "state"})
	case *state != "error" && *state != "failure" && *state != "pending" && *state != "success":
		errs = append(errs, fieldError{Resource: "Status", Code: "custom", Field: "state",
			Message: "state is not included in the list"})
	}
	if description != nil && utf8.RuneCountInString(*description) > maxDescription {
		errs = append(errs, fieldError{Resource: "Status", Code: "custom", Field: "description",
			Message: fmt.Sprintf("description is too long (maximum is %d characters)", maxDescription)})
	}

	now := time.Now().UTC().Truncate(time.Second)
	sha = strings.ToLower(sha)
	key := statusKey(owner, repo, sha)
	s.mu.Lock()
	n := 0
	for _, st := range s.statuses[key] {
		if st.Context == ctx {
			n++
		}
	}
	if n >= maxStatusesPerSHACtx {
		errs = append(errs, fieldError{Resource: "Status", Code: "custom", Field: "context",
			Message: "This SHA and context has reached the maximum number of statuses."})
	}
	if len(errs) > 0 {
		s.mu.Unlock()
		writeJSON(w, http.StatusUnprocessableEntity, apiError{
			Message: "Validation Failed", Errors: errs,
			DocumentationURL: statusDocURL, Status: "422",
		})
		return
	}
	id := s.nextStatusID
	s.nextStatusID++
	st := Status{
		URL:         fmt.Sprintf("%s/repos/%s/%s/statuses/%s", s.URL, owner, repo, sha),
		AvatarURL:   s.botUser().AvatarURL,
		ID:          id,
		NodeID:      base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("06:StatusContext%d", id))),
		State:       *state,
		Description: description,
		TargetURL:   targetURL,
		Context:     ctx,
		CreatedAt:   now,
		UpdatedAt:   now,
		Creator:     s.botUser(),
	}
	s.statuses[key] = append(s.statuses[key], st)
	s.mu.Unlock()

	w.Header().Set("Location", st.URL)
	writeJSON(w, http.StatusCreated, st)
}

// optionalString decodes a JSON string that may be absent or null.
func optionalString(raw json.RawMessage) (*string, error) {
	if raw == nil || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// listStatuses serves GET /repos/{owner}/{repo}/commits/{ref}/statuses.
// The fake knows no branches or tags, so a ref must be a full sha.
func (s *Server) listStatuses(w http.ResponseWriter, r *http.Request, c *Call, owner, repo, ref string) {
	mint, status, msg := s.authenticate(r)
	c.TokenMint = mint
	if status != 0 {
		writeError(w, status, msg)
		return
	}
	if !shaPattern.MatchString(ref) {
		writeError(w, http.StatusUnprocessableEntity, "No commit found for SHA: "+ref)
		return
	}
	all := s.Statuses(owner, repo, ref)

	q := r.URL.Query()
	perPage := queryInt(q, "per_page", defaultPerPage)
	if perPage < 1 {
		perPage = defaultPerPage
	}
	perPage = min(perPage, maxPerPage)
	page := max(queryInt(q, "page", 1), 1)
	last := max((len(all)+perPage-1)/perPage, 1)

	from := min((page-1)*perPage, len(all))
	to := min(from+perPage, len(all))
	if link := s.linkHeader(r.URL.Path, page, perPage, last); link != "" {
		w.Header().Set("Link", link)
	}
	writeJSON(w, http.StatusOK, all[from:to])
}

func queryInt(q url.Values, name string, def int) int {
	n, err := strconv.Atoi(q.Get(name))
	if err != nil {
		return def
	}
	return n
}

// linkHeader builds GitHub's pagination Link header.
func (s *Server) linkHeader(path string, page, perPage, last int) string {
	u := func(p int) string {
		return fmt.Sprintf("<%s%s?per_page=%d&page=%d>", s.URL, path, perPage, p)
	}
	var links []string
	if page > 1 {
		links = append(links, u(min(page-1, last))+`; rel="prev"`)
	}
	if page < last {
		links = append(links, u(page+1)+`; rel="next"`, u(last)+`; rel="last"`)
	}
	if page > 1 {
		links = append(links, u(1)+`; rel="first"`)
	}
	return strings.Join(links, ", ")
}

// botUser is the App's bot account, which creates the statuses.
func (s *Server) botUser() User {
	return User{
		Login:     "taskrunner-test[bot]",
		ID:        41898282,
		NodeID:    "MDM6Qm90NDE4OTgyODI=",
		AvatarURL: fmt.Sprintf("https://avatars.githubusercontent.com/in/%d?v=4", s.AppID),
		URL:       s.URL + "/users/taskrunner-test%5Bbot%5D",
		HTMLURL:   "https://github.com/apps/taskrunner-test",
		Type:      "Bot",
		SiteAdmin: false,
	}
}
