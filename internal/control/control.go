// Package control is the channel between a running task and its taskrunner:
// a pair of pipes the task inherits, the `snapshot` bash function that talks
// over them, and the loop that answers the task's requests.
//
// A request is one line holding a JSON array of strings. ["snapshot", arg...]
// gets one reply line, a shell command the function evaluates in the calling
// shell; ["debug", text...] gets no reply.
package control

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/taskrunner/taskrunner/internal/pipe"
)

// Replies to a snapshot request.
const (
	ReplyRun   = "true"
	ReplySkip  = "exit 0"
	ReplyError = "exit 1"
)

// Handler answers the requests of one job.
type Handler interface {
	// Snapshot decides what the task does and returns the reply.
	Snapshot(args []string) string
	// Debug writes a debug line to the job's log.
	Debug(text string)
	// Error writes an error line for the job.
	Error(text string)
}

// Channel is the taskrunner's end of a job's control channel.
type Channel struct {
	requests  *pipe.Reader // read end
	responses *os.File     // write end
	// ChildRequests and ChildResponses are the ends the task inherits.
	ChildRequests  *os.File
	ChildResponses *os.File
	done           chan struct{}
}

// New makes the pipes of a control channel.
func New() (*Channel, error) {
	reqR, reqW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("cannot make control channel: %w", err)
	}
	respR, respW, err := os.Pipe()
	if err != nil {
		reqR.Close()
		reqW.Close()
		return nil, fmt.Errorf("cannot make control channel: %w", err)
	}
	return &Channel{requests: pipe.NewReader(reqR), responses: respW, ChildRequests: reqW, ChildResponses: respR, done: make(chan struct{})}, nil
}

// CloseChildEnds closes this process's copies of the task's ends, once the
// task has been started with them.
func (c *Channel) CloseChildEnds() {
	c.ChildRequests.Close()
	c.ChildResponses.Close()
}

// Serve answers requests with h until Stop. Run it in its own goroutine.
func (c *Channel) Serve(h Handler) {
	defer close(c.done)
	r := bufio.NewReaderSize(c.requests, 64<<10)
	for {
		line, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			c.handle(h, bytes.TrimSuffix(line, []byte("\n")))
		}
		if err != nil {
			return
		}
	}
}

// Stop ends Serve once it has handled every request already written: the
// task has exited, but a background process may still hold the request
// pipe open, so end of file may never come.
func (c *Channel) Stop() {
	c.requests.Stop()
	<-c.done
	c.requests.Close()
	c.responses.Close()
}

func (c *Channel) handle(h Handler, line []byte) {
	req, err := decodeRequest(line)
	if err != nil {
		h.Error(fmt.Sprintf("Invalid command pipe request: %q", line))
		h.Error(describeJSONError(err))
		c.reply(ReplyError)
		return
	}
	switch {
	case len(req) > 0 && req[0] == "snapshot":
		c.reply(h.Snapshot(req[1:]))
	case len(req) > 0 && req[0] == "debug":
		h.Debug(joinArgs(req[1:]))
	default:
		h.Error("Unknown command in command pipe: " + encode(req))
		c.reply(ReplyError)
	}
}

func (c *Channel) reply(s string) {
	// A task that does not read its reply must not block the job: the pipe
	// buffer takes far more than one line, and a write error only means the
	// task is gone.
	_, _ = io.WriteString(c.responses, s+"\n")
}

func joinArgs(a []string) string {
	var b bytes.Buffer
	for i, s := range a {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s)
	}
	return b.String()
}

// encode writes a as compact JSON, as the request would have been written.
func encode(a []string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if a == nil {
		a = []string{}
	}
	_ = enc.Encode(a)
	return string(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
}

func describeJSONError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("not valid JSON at byte %d: %v", syn.Offset, err)
	case errors.As(err, &typ):
		return "expected a JSON array of strings, like [\"snapshot\",\"input.txt\"]"
	}
	return err.Error()
}

// PrintReply is a reply that prints text on the calling shell's stdout and
// lets the script go on: one line, however many text holds.
func PrintReply(text string) string {
	var b strings.Builder
	b.WriteString("printf %s $'")
	for _, r := range text {
		switch {
		case r == '\\' || r == '\'':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteString("'")
	return b.String()
}
