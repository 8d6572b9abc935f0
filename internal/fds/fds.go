// Package fds is the contract between a taskrunner and the taskrunners its
// task starts: the descriptors a task inherits, their numbers, and the
// variables that name them.
//
// A task inherits, besides stdin, stdout and stderr:
//
//	3  the toplevel's stdout            _taskrunner_toplevel_stdout=3
//	4  the toplevel's stderr            _taskrunner_toplevel_stderr=4
//	5  the job's control requests       _taskrunner_request_pipe=5
//	6  the job's control responses      _taskrunner_response_pipe=6
//	7  the job's lock                   (no variable)
//
// A nested taskrunner finds the descriptors through the variables, not the
// numbers, since a process between the task and it may have moved them: it
// writes its lines to the toplevel's stdout and stderr (both required), and
// its debug lines to the request pipe (optional: -1 where a process in
// between dropped the variable). The `snapshot` shell function reads the
// two pipe variables. Descriptor 7 is named by no variable and read by
// nobody: it only keeps the job's lock held while any process of the task
// lives; a nested taskrunner passes its own lock there to its own task.
package fds

import (
	"os"
	"strconv"
)

// The descriptor numbers in a task.
const (
	ToplevelStdout = 3
	ToplevelStderr = 4
	RequestPipe    = 5
	ResponsePipe   = 6
	Lock           = 7
)

// The names of the variables that name the descriptors in a task.
const (
	EnvToplevelStdout = "_taskrunner_toplevel_stdout"
	EnvToplevelStderr = "_taskrunner_toplevel_stderr"
	EnvRequestPipe    = "_taskrunner_request_pipe"
	EnvResponsePipe   = "_taskrunner_response_pipe"
)

// Named are the descriptors that variables name, in the order a task's
// environment lists them.
var Named = []struct {
	Env string
	FD  int
}{
	{EnvToplevelStdout, ToplevelStdout},
	{EnvToplevelStderr, ToplevelStderr},
	{EnvRequestPipe, RequestPipe},
	{EnvResponsePipe, ResponsePipe},
}

// Env returns the variables of Named as NAME=NUMBER, in order.
func Env() []string {
	env := make([]string, len(Named))
	for i, n := range Named {
		env[i] = n.Env + "=" + strconv.Itoa(n.FD)
	}
	return env
}

// Files are the files a taskrunner passes to its task.
type Files struct {
	ToplevelStdout, ToplevelStderr *os.File
	// Requests and Responses are the task's ends of the control channel.
	Requests, Responses *os.File
	Lock                *os.File
}

// ExtraFiles returns the files in the order of exec.Cmd's ExtraFiles, whose
// entry i becomes descriptor 3+i in the task.
func (f Files) ExtraFiles() []*os.File {
	const first = 3
	extra := make([]*os.File, Lock-first+1)
	extra[ToplevelStdout-first] = f.ToplevelStdout
	extra[ToplevelStderr-first] = f.ToplevelStderr
	extra[RequestPipe-first] = f.Requests
	extra[ResponsePipe-first] = f.Responses
	extra[Lock-first] = f.Lock
	return extra
}
