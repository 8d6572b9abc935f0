// Command taskrunner runs one step of a CI job: see the README.
package main

import (
	"os"

	"github.com/taskrunner/taskrunner/internal/cli"
)

func main() { os.Exit(cli.Run()) }
