package job

import (
	"strings"

	"github.com/taskrunner/taskrunner/internal/output"
)

// A task's name stands for its work in the whole build: started again in
// the same build, it is already done and returns its first status, as the
// old tool did. When the second start runs another command, that is most
// likely two tasks given one name by mistake, so the job says so.

// warnReused prints one warn line when the job, already done in this
// build, ran another command then than the one it is given now. A build of
// an older taskrunner, which recorded no command, gets no line.
func (r *run) warnReused() {
	then, ok, err := r.state.Command(r.buildID, r.opt.Name)
	now := quoteArgv(r.opt.Argv)
	if err != nil || !ok || then == now {
		return
	}
	// The output is open only if the job waited for its lock.
	if r.openOutput() != nil {
		return
	}
	r.out.Printf(output.Warn, "task %s already ran in this build as: %s; its result is reused for: %s (give one of them another name with -n)", r.opt.Name, then, now)
}

// quoteArgv is argv as a POSIX shell would read it back: each argument
// quoted where it needs it, separated by spaces.
func quoteArgv(argv []string) string {
	var b strings.Builder
	for i, a := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(quoteArg(a))
	}
	return b.String()
}

func quoteArg(a string) string {
	if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:,+@%=") == "" {
		return a
	}
	return "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
}
