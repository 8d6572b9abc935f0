package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version overrides the version taskrunner reads from its build info. Set it
// at link time:
//
//	go build -ldflags "-X github.com/taskrunner/taskrunner/internal/cli.Version=v1.2.3" ./cmd/taskrunner
var Version string

// versionLine is what --version prints: the version, then the Go release
// and the platform the binary was built with.
func versionLine() string {
	v := Version
	if v == "" {
		info, _ := debug.ReadBuildInfo()
		v = versionFrom(info)
	}
	return fmt.Sprintf("taskrunner %s (%s %s/%s)\n", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// versionFrom finds the version in the build info: the module's version
// when `go install …@vX.Y.Z` built it, else the commit the tree was at, and
// whether it had uncommitted changes, else "devel".
func versionFrom(info *debug.BuildInfo) string {
	if info == nil {
		return "devel"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var revision, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if revision == "" {
		return "devel"
	}
	if len(revision) > 12 {
		revision = revision[:12]
	}
	if modified == "true" {
		revision += "+dirty"
	}
	return "devel-" + revision
}
