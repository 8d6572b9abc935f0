// Command fakegithub runs the fake GitHub API of internal/github/githubtest
// on its own, for scripts/bench to point taskrunner processes at:
//
//	fakegithub [-delay D] -env FILE
//
// It writes to FILE the settings that point taskrunner at it, as bash
// `export` lines (the App's key with "|" for each newline), and then answers
// commands read from stdin, one a line, on stdout:
//
//	mints     how many installation tokens it has minted so far
//	delay D   every later answer waits D (a Go duration, like 300ms)
//
// It stops at the end of stdin.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/taskrunner/taskrunner/internal/github/githubtest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "fakegithub:", err)
		os.Exit(1)
	}
}

func run() error {
	delay := flag.Duration("delay", 0, "how long every answer waits")
	env := flag.String("env", "", "`file` to write the settings to")
	flag.Parse()
	if *env == "" || flag.NArg() > 0 {
		return fmt.Errorf("usage: fakegithub [-delay D] -env FILE")
	}
	srv := githubtest.New()
	defer srv.Close()
	srv.Delay(*delay)

	key := strings.ReplaceAll(strings.TrimSpace(srv.PrivateKeyPEM()), "\n", "|")
	settings := fmt.Sprintf("export GITHUB_API_URL=%s GITHUB_APP_ID=%d GITHUB_INSTALLATION_ID=%d\n"+
		"export GITHUB_REPOSITORY_OWNER=acme GITHUB_REPOSITORY=acme/widgets\n"+
		"export GITHUB_APP_PRIVATE_KEY='%s'\n", srv.URL, srv.AppID, srv.InstallationID, key)
	// Written whole under another name, then renamed: a reader waiting for
	// the file never sees half of it.
	if err := os.WriteFile(*env+".tmp", []byte(settings), 0o600); err != nil {
		return err
	}
	if err := os.Rename(*env+".tmp", *env); err != nil {
		return err
	}

	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		switch cmd {
		case "mints":
			fmt.Println(srv.Mints())
		case "delay":
			d, err := time.ParseDuration(arg)
			if err != nil {
				return err
			}
			srv.Delay(d)
			fmt.Println("ok")
		default:
			return fmt.Errorf("unknown command %q", cmd)
		}
	}
	return sc.Err()
}
