package archive

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"syscall"
)

// maxLinkHops bounds how many symbolic links resolving one target may
// follow, as the kernel's own limit does.
const maxLinkHops = 40

// entryName turns an archive name into a clean slash-separated path relative
// to the extraction root, or refuses it. "" stands for the root itself
// (GNU tar's "./"). Any ".." is refused, even one that would stay inside:
// GNU tar refuses those too, and no archive of outputs needs one.
func entryName(raw string) (string, error) {
	if raw == "" {
		return "", &UnsafeEntryError{Name: raw, Reason: "empty name"}
	}
	if strings.HasPrefix(raw, "/") {
		return "", &UnsafeEntryError{Name: raw, Reason: "absolute name"}
	}
	parts := strings.Split(raw, "/")
	clean := parts[:0]
	for _, p := range parts {
		switch p {
		case "", ".":
		case "..":
			return "", &UnsafeEntryError{Name: raw, Reason: `name contains ".."`}
		default:
			clean = append(clean, p)
		}
	}
	return strings.Join(clean, "/"), nil
}

// checkSymlinkTarget refuses a symlink target that could resolve outside
// the root: absolute targets, more ".." than the link is deep, and any ".."
// after a name. The last rule is what makes the check hold whatever comes
// later in the archive: ".." right at the start climbs from the link's own
// folder, a real folder at a known depth (Extract refuses paths through
// symlinks), while "a/.." climbs from wherever a leads, and a later entry
// could turn a into a link to somewhere shallower.
func checkSymlinkTarget(entry, name, target string) error {
	if target == "" {
		return &UnsafeEntryError{Name: entry, Reason: "symlink with empty target"}
	}
	if strings.HasPrefix(target, "/") {
		return &UnsafeEntryError{Name: entry, Reason: fmt.Sprintf("symlink to absolute path %q", target)}
	}
	depth := strings.Count(name, "/") // folders between the root and the link
	up, named := 0, false
	for _, p := range strings.Split(target, "/") {
		switch p {
		case "", ".":
		case "..":
			if named {
				return &UnsafeEntryError{Name: entry, Reason: fmt.Sprintf(`symlink target %q has ".." after a name`, target)}
			}
			if up++; up > depth {
				return &UnsafeEntryError{Name: entry, Reason: fmt.Sprintf("symlink target %q points outside the root", target)}
			}
		default:
			named = true
		}
	}
	return nil
}

// resolveInside follows target from the folder of the link name through
// what is on disk now, expanding symlinks already in the root (ones this
// archive made, or ones that were there before), and refuses it if it
// leaves the root. Parts that do not exist yet can only be made by later
// entries, which are checked in their turn.
func (x *extractor) resolveInside(entry, name, target string) error {
	cur := splitPath(path.Dir(name))
	todo := splitPath(target)
	for hops := 0; len(todo) > 0; {
		p := todo[0]
		todo = todo[1:]
		if p == ".." {
			if len(cur) == 0 {
				return &UnsafeEntryError{Name: entry, Reason: fmt.Sprintf("symlink target %q resolves outside the root", target)}
			}
			cur = cur[:len(cur)-1]
			continue
		}
		cur = append(cur, p)
		at := strings.Join(cur, "/")
		fi, err := x.root.Lstat(at)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			if slices.Contains(todo, "..") {
				return &UnsafeEntryError{Name: entry, Reason: fmt.Sprintf(`symlink target %q climbs out of missing %q`, target, at)}
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("check symlink %s: %w", entry, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			continue
		}
		if hops++; hops > maxLinkHops {
			return &UnsafeEntryError{Name: entry, Reason: "too many levels of symbolic links"}
		}
		next, err := x.root.Readlink(at)
		if err != nil {
			return fmt.Errorf("check symlink %s: %w", entry, err)
		}
		if strings.HasPrefix(next, "/") {
			return &UnsafeEntryError{Name: entry, Reason: fmt.Sprintf("symlink target %q goes through %q, a link to absolute path %q", target, at, next)}
		}
		cur = cur[:len(cur)-1]
		todo = append(splitPath(next), todo...)
	}
	return nil
}

// splitPath splits a slash-separated path into its parts, dropping empty
// ones and ".".
func splitPath(p string) []string {
	var parts []string
	for _, s := range strings.Split(p, "/") {
		if s != "" && s != "." {
			parts = append(parts, s)
		}
	}
	return parts
}
