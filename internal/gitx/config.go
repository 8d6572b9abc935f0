package gitx

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// gitConfig is the configuration values the in-process hash reads: the
// last value of each key ("section.key" or "section.subsection.key",
// section and key lowercased), over the system, global and repository
// files, in git's order.
type gitConfig map[string]string

// bool returns the value of a boolean key, or def when it is not set.
func (c gitConfig) bool(key string, def bool) (bool, error) {
	v, ok := c[key]
	if !ok {
		return def, nil
	}
	switch strings.ToLower(v) {
	case "true", "yes", "on", "1", "\x00":
		return true, nil
	case "false", "no", "off", "0", "":
		return false, nil
	}
	return false, unsure("%s = %q is not a plain boolean", key, v)
}

// pathEnv are the variables that change which configuration, attributes or
// pathspec rules git uses; with any of them set, git itself is asked.
var pathEnv = []string{"GIT_CONFIG", "GIT_CONFIG_SYSTEM", "GIT_CONFIG_COUNT", "GIT_LITERAL_PATHSPECS", "GIT_GLOB_PATHSPECS", "GIT_NOGLOB_PATHSPECS",
	"GIT_ICASE_PATHSPECS", "GIT_ATTR_SOURCE", "GIT_ATTR_NOSYSTEM", "GIT_NAMESPACE"}

// userConfigDir is git's $XDG_CONFIG_HOME/git, or ~/.config/git, or "".
func userConfigDir() string {
	// Read as git reads them: they say where git's own files are.
	if x := os.Getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "git")
	}
	if h := os.Getenv("HOME"); h != "" {
		return filepath.Join(h, ".config", "git")
	}
	return ""
}

// readConfig reads the configuration git would use in the repository whose
// common folder is common. Includes, unusual syntax, or a git not installed
// in /usr/bin (whose system files could be elsewhere) are an *errUnsure.
func readConfig(common string) (gitConfig, error) {
	for _, name := range pathEnv {
		if _, set := os.LookupEnv(name); set {
			return nil, unsure("%s is set", name)
		}
	}
	git, err := exec.LookPath("git")
	if err != nil {
		return nil, unsure("git not found in PATH")
	}
	if real, err := filepath.EvalSymlinks(git); err == nil {
		git = real
	}
	if git != "/usr/bin/git" && git != "/bin/git" {
		return nil, unsure("git at %s may read its system configuration elsewhere", git)
	}
	var files []string
	switch v, _ := os.LookupEnv("GIT_CONFIG_NOSYSTEM"); strings.ToLower(v) {
	case "", "0", "false", "no", "off":
		files = append(files, "/etc/gitconfig")
	case "1", "true", "yes", "on":
	default:
		return nil, unsure("GIT_CONFIG_NOSYSTEM=%q is not a plain boolean", v)
	}
	if g, set := os.LookupEnv("GIT_CONFIG_GLOBAL"); set {
		if g != "" {
			files = append(files, g)
		}
	} else {
		if d := userConfigDir(); d != "" {
			files = append(files, filepath.Join(d, "config"))
		}
		if h := os.Getenv("HOME"); h != "" {
			files = append(files, filepath.Join(h, ".gitconfig"))
		}
	}
	files = append(files, filepath.Join(common, "config"))
	c := gitConfig{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, unsure("cannot read %s: %v", f, err)
		}
		if err := parseConfig(b, f, c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// parseConfig adds the values of a configuration file to c. Only the plain
// syntax is understood; anything else is an *errUnsure.
func parseConfig(b []byte, name string, c gitConfig) error {
	bad := func() error { return unsure("%s: configuration syntax not understood", name) }
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			end := strings.IndexByte(line, ']')
			if end < 0 {
				return bad()
			}
			head := strings.TrimSpace(line[1:end])
			if sec, sub, ok := strings.Cut(head, " "); ok {
				sub = strings.TrimSpace(sub)
				if len(sub) < 2 || sub[0] != '"' || sub[len(sub)-1] != '"' || strings.ContainsAny(sub[1:len(sub)-1], "\\\"") {
					return bad()
				}
				section = strings.ToLower(sec) + "." + sub[1:len(sub)-1]
			} else {
				section = strings.ToLower(head)
			}
			line = strings.TrimSpace(line[end+1:])
		}
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if section == "" {
			return bad()
		}
		key, value, hasValue := strings.Cut(line, "=")
		key = strings.ToLower(strings.TrimSpace(key))
		if key == "" || strings.ContainsAny(key, " \t\"#;") {
			return bad()
		}
		if !hasValue {
			value = "\x00" // a key alone: boolean true
		} else {
			v, ok := configValue(value)
			if !ok {
				return bad()
			}
			value = v
		}
		c[section+"."+key] = value
	}
	if sc.Err() != nil {
		return bad()
	}
	return nil
}

// configValue unquotes a value: comments dropped, quotes and the simple
// escapes understood. A value continued on the next line is refused.
func configValue(s string) (string, bool) {
	var b strings.Builder
	quoted := false
	s = strings.TrimSpace(s)
	pending := "" // white space kept only if more text follows
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case !quoted && (ch == '#' || ch == ';'):
			return b.String(), true
		case ch == '"':
			b.WriteString(pending)
			pending = ""
			quoted = !quoted
		case ch == '\\':
			i++
			if i >= len(s) {
				return "", false
			}
			b.WriteString(pending)
			pending = ""
			switch s[i] {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'b':
				b.WriteByte('\b')
			case '\\', '"':
				b.WriteByte(s[i])
			default:
				return "", false
			}
		case !quoted && (ch == ' ' || ch == '\t'):
			pending += string(ch)
		default:
			b.WriteString(pending)
			pending = ""
			b.WriteByte(ch)
		}
	}
	if quoted {
		return "", false
	}
	return b.String(), true
}

// hashSettings are the settings of a repository that the in-process hash
// follows.
type hashSettings struct {
	fileMode     bool   // core.fileMode: trust the executable bit
	excludesFile string // core.excludesFile, or git's default
}

// settingsFor checks c for anything that changes what `git add` stores
// beyond what the in-process hash handles, and returns what it follows.
func settingsFor(c gitConfig) (hashSettings, error) {
	var s hashSettings
	for key, v := range c {
		sec, rest, _ := strings.Cut(key, ".")
		switch {
		case sec == "include" || sec == "includeif":
			return s, unsure("configuration includes other files")
		case key == "extensions.objectformat":
			if !strings.EqualFold(v, "sha1") {
				return s, unsure("repository object format %s", v)
			}
		case sec == "extensions":
			switch rest {
			case "noop", "partialclone", "preciousobjects", "refstorage", "worktreeconfig":
			default:
				return s, unsure("repository extension %s", rest)
			}
		case key == "core.eol", key == "core.attributesfile", key == "core.protectntfs", key == "core.protecthfs":
			return s, unsure("%s is set", key)
		}
	}
	checks := []struct {
		key  string
		def  bool
		want bool
		why  string
	}{
		{"core.symlinks", true, true, "core.symlinks is false"},
		{"core.ignorecase", false, false, "core.ignoreCase is true"},
		{"core.precomposeunicode", false, false, "core.precomposeUnicode is true"},
		{"core.splitindex", false, false, "core.splitIndex is true"},
		{"core.sparsecheckout", false, false, "core.sparseCheckout is true"},
		{"index.sparse", false, false, "index.sparse is true"},
	}
	for _, ch := range checks {
		v, err := c.bool(ch.key, ch.def)
		if err != nil {
			return s, err
		}
		if v != ch.want {
			return s, unsure("%s", ch.why)
		}
	}
	if v, ok := c["core.autocrlf"]; ok {
		if b, err := c.bool("core.autocrlf", false); err != nil || b || v == "\x00" {
			return s, unsure("core.autocrlf is %s", strings.Trim(v, "\x00"))
		}
	}
	if _, ok := c["core.fsmonitor"]; ok {
		if b, err := c.bool("core.fsmonitor", false); err != nil || b {
			return s, unsure("core.fsmonitor is set")
		}
	}
	var err error
	if s.fileMode, err = c.bool("core.filemode", true); err != nil {
		return s, err
	}
	if f, ok := c["core.excludesfile"]; ok {
		switch {
		case strings.HasPrefix(f, "~/"):
			h := os.Getenv("HOME")
			if h == "" {
				return s, unsure("core.excludesFile names ~ without HOME")
			}
			f = filepath.Join(h, f[2:])
		case !filepath.IsAbs(f):
			return s, unsure("core.excludesFile %q is not an absolute path", f)
		}
		s.excludesFile = f
	} else if d := userConfigDir(); d != "" {
		s.excludesFile = filepath.Join(d, "ignore")
	}
	// Attributes can set filters or end-of-line conversion.
	if d := userConfigDir(); d != "" {
		if _, err := os.Lstat(filepath.Join(d, "attributes")); err == nil {
			return s, unsure("global attributes file %s", filepath.Join(d, "attributes"))
		}
	}
	if _, err := os.Lstat("/etc/gitattributes"); err == nil {
		return s, unsure("system attributes file /etc/gitattributes")
	}
	return s, nil
}
