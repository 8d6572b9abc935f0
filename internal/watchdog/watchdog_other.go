//go:build !linux

package watchdog

// Conn is a taskrunner's connection to its build's watchdog; there is none
// on this system.
type Conn struct{}

// Start returns ErrUnsupported: there is no watchdog on this system.
func Start(socket string) (*Conn, error) { return nil, ErrUnsupported }

// Dial returns ErrUnsupported: there is no watchdog on this system.
func Dial(socket string) (*Conn, error) { return nil, ErrUnsupported }

// Guard does nothing.
func (c *Conn) Guard(pgid int) error { return ErrUnsupported }

// Done does nothing.
func (c *Conn) Done() {}

// Inherited reports false: no process is a watchdog on this system.
func Inherited() bool { return false }

// Serve returns 2: there is no watchdog on this system.
func Serve(socket string) int { return 2 }
