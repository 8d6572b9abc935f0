package control

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeHandler records the requests it gets and answers snapshot requests
// with reply.
type fakeHandler struct {
	mu       sync.Mutex
	reply    string
	snapshot [][]string
	debug    []string
	errors   []string
}

func (h *fakeHandler) Snapshot(args []string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.snapshot = append(h.snapshot, args)
	return h.reply
}

func (h *fakeHandler) Debug(text string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.debug = append(h.debug, text)
}

func (h *fakeHandler) Error(text string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.errors = append(h.errors, text)
}

// serve starts a channel served by h. The returned task side writes
// requests and reads replies; the channel is stopped at the end of the test.
func serve(t *testing.T, h Handler) (*Channel, *os.File, *bufio.Reader) {
	t.Helper()
	c, err := New()
	if err != nil {
		t.Fatal(err)
	}
	go c.Serve(h)
	t.Cleanup(func() {
		c.ChildRequests.Close()
		c.ChildResponses.Close()
		c.Stop()
	})
	return c, c.ChildRequests, bufio.NewReader(c.ChildResponses)
}

// readLine reads one reply, failing the test if none comes within a long
// time (so that a broken channel fails rather than hangs).
func readLine(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	type result struct {
		line string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		l, err := r.ReadString('\n')
		ch <- result{l, err}
	}()
	select {
	case res := <-ch:
		if res.err != nil {
			t.Fatalf("reading a reply: %v (got %q)", res.err, res.line)
		}
		return res.line
	case <-time.After(10 * time.Second):
		t.Fatal("no reply")
		return ""
	}
}

func write(t *testing.T, w io.Writer, s string) {
	t.Helper()
	if _, err := io.WriteString(w, s); err != nil {
		t.Fatal(err)
	}
}

func TestServe(t *testing.T) {
	tests := []struct {
		name     string
		request  string
		reply    string // "" for none
		snapshot [][]string
		debug    []string
		errors   []string
	}{
		{
			name:     "snapshot",
			request:  `["snapshot","in.txt","--raw","a \"b\"\t\\\n$x é"]`,
			reply:    "exit 0\n",
			snapshot: [][]string{{"in.txt", "--raw", "a \"b\"\t\\\n$x é"}},
		},
		{
			// Bytes that are not UTF-8 (a Latin-1 file name) must not
			// become U+FFFD: two different names would then hash alike.
			name:     "snapshot with bytes that are not UTF-8",
			request:  "[\"snapshot\",\"caf\xe9.txt\",\"--raw\",\"\xe8\\t\\u00e9\\ud83d\\ude00\\/\"]",
			reply:    "exit 0\n",
			snapshot: [][]string{{"caf\xe9.txt", "--raw", "\xe8\té😀/"}},
		},
		{
			name:    "not an array of strings, with bytes that are not UTF-8",
			request: "[\"snapshot\",1,\"\xe9\"]",
			reply:   "exit 1\n",
			errors: []string{`Invalid command pipe request: "[\"snapshot\",1,\"\xe9\"]"`,
				`expected a JSON array of strings, like ["snapshot","input.txt"]`},
		},
		{
			name:    "junk with bytes that are not UTF-8",
			request: "[\"\xe9\"",
			reply:   "exit 1\n",
			errors: []string{`Invalid command pipe request: "[\"\xe9\""`,
				"not valid JSON at byte 4: unexpected end of JSON input"},
		},
		{
			name:     "snapshot without arguments",
			request:  `["snapshot"]`,
			reply:    "exit 0\n",
			snapshot: [][]string{{}},
		},
		{
			name:    "debug",
			request: `["debug","hello world"]`,
			debug:   []string{"hello world"},
		},
		{
			name:    "debug with several words",
			request: `["debug","Subtask","x","finished"]`,
			debug:   []string{"Subtask x finished"},
		},
		{
			name:    "junk",
			request: "junk",
			reply:   "exit 1\n",
			errors: []string{`Invalid command pipe request: "junk"`,
				"not valid JSON at byte 1: invalid character 'j' looking for beginning of value"},
		},
		{
			name:    "not an array of strings",
			request: `{"snapshot":1}`,
			reply:   "exit 1\n",
			errors: []string{`Invalid command pipe request: "{\"snapshot\":1}"`,
				`expected a JSON array of strings, like ["snapshot","input.txt"]`},
		},
		{
			name:    "unknown command",
			request: `["random","command"]`,
			reply:   "exit 1\n",
			errors:  []string{`Unknown command in command pipe: ["random","command"]`},
		},
		{
			name:    "empty array",
			request: `[]`,
			reply:   "exit 1\n",
			errors:  []string{`Unknown command in command pipe: []`},
		},
		{
			name:    "unknown command with characters HTML escapes",
			request: `["<&>"]`,
			reply:   "exit 1\n",
			errors:  []string{`Unknown command in command pipe: ["<&>"]`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &fakeHandler{reply: ReplySkip}
			_, req, resp := serve(t, h)
			write(t, req, tt.request+"\n")
			// A snapshot request after it shows, by its reply, that the
			// request was handled and whether it got a reply of its own.
			write(t, req, `["snapshot","marker"]`+"\n")
			if tt.reply != "" {
				if got := readLine(t, resp); got != tt.reply {
					t.Errorf("reply %q, want %q", got, tt.reply)
				}
			}
			if got := readLine(t, resp); got != "exit 0\n" {
				t.Fatalf("reply to the marker %q, want \"exit 0\\n\" (an extra reply?)", got)
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			want := append(tt.snapshot, []string{"marker"})
			if !slices.EqualFunc(h.snapshot, want, slices.Equal) {
				t.Errorf("snapshot requests %q, want %q", h.snapshot, want)
			}
			if !slices.Equal(h.debug, tt.debug) {
				t.Errorf("debug lines %q, want %q", h.debug, tt.debug)
			}
			if !slices.Equal(h.errors, tt.errors) {
				t.Errorf("error lines %q, want %q", h.errors, tt.errors)
			}
		})
	}
}

// TestServeLongRequest: a request longer than any buffer is one request.
func TestServeLongRequest(t *testing.T) {
	h := &fakeHandler{reply: ReplyRun}
	_, req, resp := serve(t, h)
	long := strings.Repeat("x", 1<<20)
	go io.WriteString(req, `["snapshot","--raw","`+long+`"]`+"\n")
	if got := readLine(t, resp); got != "true\n" {
		t.Fatalf("reply %q", got)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.snapshot) != 1 || len(h.snapshot[0]) != 2 || h.snapshot[0][1] != long {
		t.Errorf("the long request was not passed on whole")
	}
}

// TestStopWithWriterOpen: the task has exited but another process still
// holds the request pipe's write end, so the pipe never ends; Stop must
// return anyway, promptly.
func TestStopWithWriterOpen(t *testing.T) {
	c, err := New()
	if err != nil {
		t.Fatal(err)
	}
	// A background process inherits the write end and outlives the task.
	bg := exec.Command("sleep", "60")
	bg.ExtraFiles = []*os.File{c.ChildRequests}
	if err := bg.Start(); err != nil {
		t.Skipf("cannot start sleep: %v", err)
	}
	defer func() {
		bg.Process.Kill()
		bg.Wait()
	}()
	c.CloseChildEnds()
	go c.Serve(&fakeHandler{})

	stopped := make(chan struct{})
	go func() {
		c.Stop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not return while another process held the request pipe open")
	}
}

// TestStopHandlesWrittenRequests: requests written before Stop are all
// handled, in order, even when the pipe stays open and Serve has not read
// them yet when Stop is called.
func TestStopHandlesWrittenRequests(t *testing.T) {
	for _, started := range []bool{false, true} {
		t.Run(fmt.Sprintf("serving=%v", started), func(t *testing.T) {
			c, err := New()
			if err != nil {
				t.Fatal(err)
			}
			defer c.ChildRequests.Close()
			defer c.ChildResponses.Close()
			h := &fakeHandler{reply: ReplyRun}
			if started {
				go c.Serve(h)
			}
			var want []string
			for i := range 200 {
				line := fmt.Sprintf("Subtask task-%d finished with ExitSuccess", i)
				want = append(want, line)
				write(t, c.ChildRequests, `["debug",`+fmt.Sprintf("%q", line)+"]\n")
			}
			if !started {
				go c.Serve(h)
			}
			c.Stop()
			h.mu.Lock()
			defer h.mu.Unlock()
			if !slices.Equal(h.debug, want) {
				t.Errorf("handled %d of %d debug requests", len(h.debug), len(want))
			}
		})
	}
}

// TestStopAfterEOF: when every writer is gone, Serve ends by itself and
// Stop still returns.
func TestStopAfterEOF(t *testing.T) {
	c, err := New()
	if err != nil {
		t.Fatal(err)
	}
	h := &fakeHandler{}
	go c.Serve(h)
	write(t, c.ChildRequests, `["debug","last words"]`+"\n")
	c.CloseChildEnds()
	c.Stop()
	if !slices.Equal(h.debug, []string{"last words"}) {
		t.Errorf("debug lines %q", h.debug)
	}
}

// TestStopWithLastLineUnterminated: a request missing its newline at the end
// of the pipe is still handled.
func TestStopWithLastLineUnterminated(t *testing.T) {
	c, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer c.ChildRequests.Close()
	defer c.ChildResponses.Close()
	h := &fakeHandler{}
	go c.Serve(h)
	write(t, c.ChildRequests, `["debug","no newline"]`)
	c.Stop()
	if !slices.Equal(h.debug, []string{"no newline"}) {
		t.Errorf("debug lines %q", h.debug)
	}
}

// TestUnquote: the decoder that keeps bytes reads what encoding/json writes,
// as encoding/json reads it.
func TestUnquote(t *testing.T) {
	for _, s := range []string{"", "plain", "a \"b\" \\ / \b\f\n\r\t", "\x00\x01\x1f\x7f", "<&>", "é 日本 😀", "\u2028\u2029"} {
		q, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := unquote(q); !ok || got != s {
			t.Errorf("unquote(%s) = %q, %v; want %q", q, got, ok, s)
		}
	}
	for q, want := range map[string]string{
		`"\u00e9\ud83d\ude00\/"`: "é😀/",
		`"\ud83d"`:               "\uFFFD", // a lone surrogate, as encoding/json reads it
		`"\ud83dx"`:              "\uFFFDx",
		`"\ud83d\u0041"`:         "\uFFFDA",
		`"\ude00\ud83d"`:         "\uFFFD\uFFFD",
		`"\ud83d\ud83d\ude00"`:   "\uFFFD😀",
		"\"\xe9\\n\"":            "\xe9\n",
	} {
		if got, ok := unquote([]byte(q)); !ok || got != want {
			t.Errorf("unquote(%s) = %q, %v; want %q", q, got, ok, want)
		}
	}
	for _, q := range []string{``, `"`, `1`, `null`, `["a"]`} {
		if got, ok := unquote([]byte(q)); ok {
			t.Errorf("unquote(%s) = %q, want not a string", q, got)
		}
	}
}

func TestPrintReply(t *testing.T) {
	for _, text := range []string{"", "one line\n", "a 'quoted' \\ word\n\tand $HOME `x` \"y\"\nno end", "ünïcode\r\n"} {
		reply := PrintReply(text)
		if strings.Contains(reply, "\n") {
			t.Errorf("PrintReply(%q) spans lines: %q", text, reply)
		}
		got, err := exec.Command("bash", "-c", `eval "$1"`, "bash", reply).Output()
		if err != nil {
			t.Fatalf("bash: %v", err)
		}
		if string(got) != text {
			t.Errorf("PrintReply(%q) printed %q", text, got)
		}
	}
}
