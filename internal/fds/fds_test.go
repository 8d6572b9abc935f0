package fds

import (
	"os"
	"slices"
	"testing"
)

func TestExtraFilesByNumber(t *testing.T) {
	files := make([]*os.File, 5)
	for i := range files {
		files[i] = os.NewFile(uintptr(100+i), "")
	}
	f := Files{ToplevelStdout: files[0], ToplevelStderr: files[1], Requests: files[2], Responses: files[3], Lock: files[4]}
	extra := f.ExtraFiles()
	for fd, want := range map[int]*os.File{ToplevelStdout: f.ToplevelStdout, ToplevelStderr: f.ToplevelStderr,
		RequestPipe: f.Requests, ResponsePipe: f.Responses, Lock: f.Lock} {
		if got := extra[fd-3]; got != want {
			t.Errorf("descriptor %d is %v, want %v", fd, got.Fd(), want.Fd())
		}
	}
	if len(extra) != Lock-2 {
		t.Errorf("%d extra files, want %d", len(extra), Lock-2)
	}
}

func TestEnv(t *testing.T) {
	want := []string{"_taskrunner_toplevel_stdout=3", "_taskrunner_toplevel_stderr=4",
		"_taskrunner_request_pipe=5", "_taskrunner_response_pipe=6"}
	if got := Env(); !slices.Equal(got, want) {
		t.Errorf("Env() = %q, want %q", got, want)
	}
}
