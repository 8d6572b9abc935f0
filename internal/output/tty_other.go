//go:build !linux && !darwin

package output

// isTerminal reports no terminal where taskrunner does not know how to ask:
// no colour unless TASKRUNNER_COLOR=always.
func isTerminal(fd int) bool { return false }
