package archive

import (
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// stagingPrefix starts the name of the folder a restore stages its archive
// in, at the top of the cache root. No output and no restored entry may
// start with it: a restore removes such folders when their process is gone.
const stagingPrefix = ".taskrunner-restore-"

// entryName turns an archive name into a clean slash-separated path relative
// to the cache root, or refuses it. "" stands for the root itself (GNU
// tar's "./"). Any ".." is refused, even one that would stay inside: GNU tar
// refuses those too, and no archive of outputs needs one.
func entryName(raw string) (string, error) {
	if raw == "" {
		return "", &UnsafeEntryError{Name: raw, Reason: "empty name"}
	}
	if strings.HasPrefix(raw, "/") {
		return "", &UnsafeEntryError{Name: raw, Reason: "absolute name"}
	}
	// No strings.Split: a slice of parts for every entry would cost the
	// square of the depth in a deep archive.
	var b strings.Builder
	b.Grow(len(raw))
	for rest := raw; rest != ""; {
		var p string
		p, rest, _ = strings.Cut(rest, "/")
		switch p {
		case "", ".":
			continue
		case "..":
			return "", &UnsafeEntryError{Name: raw, Reason: `name contains ".."`}
		}
		if b.Len() > 0 {
			b.WriteByte('/')
		}
		b.WriteString(p)
	}
	return b.String(), nil
}

// depth counts the components of a clean name.
func depth(name string) int {
	if name == "" {
		return 0
	}
	return strings.Count(name, "/") + 1
}

// isGit reports whether a path component names a git folder. Case is
// ignored: on the file systems of macOS and Windows ".GIT" is ".git".
func isGit(component string) bool {
	return strings.EqualFold(component, ".git")
}

// hasGit reports whether a clean name has a .git component.
func hasGit(name string) bool {
	for p := range strings.SplitSeq(name, "/") {
		if isGit(p) {
			return true
		}
	}
	return false
}

// reserved reports whether a clean name lies in a restore's staging folder.
func reserved(name string) bool {
	return strings.HasPrefix(name, stagingPrefix)
}

// outputSet is a task's declared outputs: clean slash-separated paths
// relative to the cache root, sorted, none inside another; "." alone
// stands for the whole root.
type outputSet []string

// outputNames cleans paths to an outputSet. It refuses absolute paths,
// paths leading out of the root, and paths through .git or a staging
// folder, which restores never write to.
func outputNames(paths []string) (outputSet, error) {
	names := make([]string, 0, len(paths))
	for _, p := range paths {
		if p == "" || filepath.IsAbs(p) {
			return nil, fmt.Errorf("output path %q must be relative to the cache root", p)
		}
		name := filepath.ToSlash(filepath.Clean(p))
		if name == ".." || strings.HasPrefix(name, "../") {
			return nil, fmt.Errorf("output path %q is outside the cache root", p)
		}
		if hasGit(name) {
			return nil, fmt.Errorf("output path %q is inside .git, which is never cached", p)
		}
		if reserved(name) {
			return nil, fmt.Errorf("output path %q is a restore's staging folder", p)
		}
		names = append(names, name)
	}
	if slices.Contains(names, ".") {
		return outputSet{"."}, nil
	}
	slices.Sort(names)
	names = slices.Compact(names)
	out := names[:0]
	for _, name := range names {
		// Sorted, a folder comes before what is inside it.
		if len(out) == 0 || !under(name, out[len(out)-1]) {
			out = append(out, name)
		}
	}
	return out, nil
}

// under reports whether name is dir or lies inside it.
func under(name, dir string) bool {
	return name == dir || len(name) > len(dir) && name[len(dir)] == '/' && strings.HasPrefix(name, dir)
}

// whole reports whether the set is the whole cache root.
func (s outputSet) whole() bool { return len(s) == 1 && s[0] == "." }

// contains reports whether name ("" for the root) is an output or lies
// inside one.
func (s outputSet) contains(name string) bool {
	if s.whole() {
		return true
	}
	for _, o := range s {
		if under(name, o) {
			return true
		}
	}
	return false
}

// above reports whether name is a folder above an output.
func (s outputSet) above(name string) bool {
	if s.whole() {
		return false
	}
	for _, o := range s {
		if o != name && under(o, name) {
			return true
		}
	}
	return false
}

// checkLink refuses a symlink at name (clean, inside the outputs) whose
// target does not stay inside the outputs, or names .git. It returns the
// reason, or "".
//
// The target is resolved lexically from the link's folder. That is how the
// kernel resolves it too, because ".." may only lead the target: it then
// climbs from the link's own folder, a real folder at a known depth
// (restores never write through links), while "a/.." climbs from wherever
// a leads, which a later entry could make a link to somewhere shallower.
// A link to another link inside the outputs is fine: that one is checked
// in its turn.
func (s outputSet) checkLink(name, target string) string {
	if target == "" {
		return "symlink with empty target"
	}
	if strings.HasPrefix(target, "/") {
		return fmt.Sprintf("symlink to absolute path %q", target)
	}
	dir := path.Dir(name)
	if dir == "." {
		dir = ""
	}
	up, named := 0, false
	var rest []string
	for _, p := range strings.Split(target, "/") {
		switch p {
		case "", ".":
		case "..":
			if named {
				return fmt.Sprintf(`symlink target %q has ".." after a name`, target)
			}
			if up++; up > depth(dir) {
				return fmt.Sprintf("symlink target %q points outside the cache root", target)
			}
		default:
			named = true
			rest = append(rest, p)
		}
	}
	for range up {
		if i := strings.LastIndexByte(dir, '/'); i >= 0 {
			dir = dir[:i]
		} else {
			dir = ""
		}
	}
	resolved := path.Join(append([]string{dir}, rest...)...)
	if resolved == "." {
		resolved = ""
	}
	switch {
	case hasGit(resolved):
		return fmt.Sprintf("symlink to %q leads into .git", target)
	case !s.contains(resolved):
		return fmt.Sprintf("symlink to %q leads to %q, outside the task's outputs", target, "./"+resolved)
	}
	return ""
}
