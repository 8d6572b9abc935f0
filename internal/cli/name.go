package cli

import "github.com/taskrunner/taskrunner/internal/state"

// checkName reports why name cannot be a task's name, as a usage error, or
// nil. The rule is state's, which owns the file names a name becomes.
func checkName(name string) error {
	if err := state.ValidJobName(name); err != nil {
		return &UsageError{err.Error()}
	}
	return nil
}
