package gitx

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"strings"
)

// ignorePattern is one line of a .gitignore-style file, parsed as git's
// parse_path_pattern does.
type ignorePattern struct {
	pattern    string // without "!" and trailing "/"
	base       string // the folder of the file, "" or ending in "/"
	nowildcard int    // length of the leading part without glob characters
	negative   bool
	mustBeDir  bool
	noDir      bool // no "/" in the pattern: it matches base names
	endsWith   bool // "*literal"
}

// ignoreList is the patterns of one file, in file order.
type ignoreList []ignorePattern

// parseIgnore parses the contents of an ignore file whose patterns are
// relative to base ("" or a folder ending in "/"). Contents git could read
// differently (carriage returns, character classes) are an *errUnsure.
func parseIgnore(b []byte, base, name string) (ignoreList, error) {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	if bytes.IndexByte(b, '\r') >= 0 || bytes.IndexByte(b, 0) >= 0 {
		return nil, unsure("%s holds carriage returns or NULs", name)
	}
	var list ignoreList
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		s := trimTrailingSpaces(string(line))
		if strings.Contains(s, "[:") {
			return nil, unsure("%s uses a character class", name)
		}
		p := ignorePattern{base: base}
		if strings.HasPrefix(s, "!") {
			p.negative = true
			s = s[1:]
		}
		if strings.HasSuffix(s, "/") {
			p.mustBeDir = true
			s = s[:len(s)-1]
		}
		if s == "" {
			if p.negative || p.mustBeDir {
				return nil, unsure("%s has an empty pattern", name)
			}
			continue
		}
		p.noDir = !strings.Contains(s, "/")
		p.nowildcard = simpleLength(s)
		p.endsWith = s[0] == '*' && simpleLength(s[1:]) == len(s)-1
		p.pattern = s
		list = append(list, p)
	}
	return list, nil
}

// trimTrailingSpaces drops trailing spaces that are not escaped with a
// backslash, as git's trim_trailing_spaces.
func trimTrailingSpaces(s string) string {
	end := len(s)
	lastSpace := -1
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ':
			if lastSpace < 0 {
				lastSpace = i
			}
		case '\\':
			i++
			if i >= len(s) {
				return s
			}
			lastSpace = -1
		default:
			lastSpace = -1
		}
	}
	if lastSpace >= 0 {
		end = lastSpace
	}
	return s[:end]
}

// simpleLength is the length of the leading part of s without glob
// characters.
func simpleLength(s string) int {
	for i := 0; i < len(s); i++ {
		if isGlobSpecial(s[i]) {
			return i
		}
	}
	return len(s)
}

// match returns the last pattern of l that matches path (from the top of the
// work tree, no trailing slash), or nil.
func (l ignoreList) match(path string, isDir bool) *ignorePattern {
	base := path[strings.LastIndexByte(path, '/')+1:]
	for i := len(l) - 1; i >= 0; i-- {
		p := &l[i]
		if p.mustBeDir && !isDir {
			continue
		}
		if p.noDir {
			if matchBasename(base, p) {
				return p
			}
			continue
		}
		if matchPathname(path, p) {
			return p
		}
	}
	return nil
}

func matchBasename(base string, p *ignorePattern) bool {
	switch {
	case p.nowildcard == len(p.pattern):
		return base == p.pattern
	case p.endsWith:
		return strings.HasSuffix(base, p.pattern[1:])
	}
	return wildmatch(p.pattern, base, false)
}

// matchPathname is git's match_pathname: the pattern is relative to the
// folder of its file, and matched with WM_PATHNAME after its literal prefix.
func matchPathname(path string, p *ignorePattern) bool {
	pattern, prefix := p.pattern, p.nowildcard
	if pattern[0] == '/' {
		pattern = pattern[1:]
		prefix--
	}
	baselen := len(p.base)
	if baselen > 0 {
		baselen-- // without the trailing slash
	}
	if len(path) < baselen+1 || (baselen > 0 && path[baselen] != '/') || path[:baselen] != p.base[:baselen] {
		return false
	}
	name := path
	if baselen > 0 {
		name = path[baselen+1:]
	}
	if prefix > 0 {
		if prefix > len(name) || pattern[:prefix] != name[:prefix] {
			return false
		}
		pattern, name = pattern[prefix:], name[prefix:]
		if pattern == "" && name == "" {
			return true
		}
	}
	return wildmatch(pattern, name, true)
}

// excludes are the ignore rules of a work tree: the .gitignore files read
// so far, by folder ("" for the top, else ending in "/"), then
// .git/info/exclude, then core.excludesFile.
type excludes struct {
	top     string
	dirs    map[string]ignoreList
	files   []ignoreList // info/exclude first: it wins over excludesFile
	ignored map[string]bool
}

// readIgnoreFile reads an ignore file; a missing one is empty.
func readIgnoreFile(name, base string) (ignoreList, error) {
	b, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, unsure("cannot read %s: %v", name, err)
	}
	return parseIgnore(b, base, name)
}

// load reads the .gitignore of folder dir ("" or ending in "/").
func (x *excludes) load(dir string) error {
	if _, ok := x.dirs[dir]; ok {
		return nil
	}
	name := x.top + "/" + dir + ".gitignore"
	fi, err := os.Lstat(name)
	if err == nil && !fi.Mode().IsRegular() {
		return unsure("%s is not a regular file", name)
	}
	l, err := readIgnoreFile(name, dir)
	if err != nil {
		return err
	}
	x.dirs[dir] = l
	return nil
}

// isIgnored reports whether path (no trailing slash) is ignored: it, or a
// folder above it, matches a pattern that is not negated. The .gitignore
// files of the folders above path must have been loaded (see load).
func (x *excludes) isIgnored(path string, isDir bool) (bool, error) {
	if isDir {
		if v, ok := x.ignored[path]; ok {
			return v, nil
		}
	}
	parent := ""
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		parent = path[:i+1]
		ign, err := x.isIgnored(path[:i], true)
		if err != nil || ign {
			return ign, err
		}
	}
	res := false
	found := false
	for d := parent; ; {
		if err := x.load(d); err != nil {
			return false, err
		}
		if p := x.dirs[d].match(path, isDir); p != nil {
			res, found = !p.negative, true
			break
		}
		if d == "" {
			break
		}
		d = d[:strings.LastIndexByte(d[:len(d)-1], '/')+1]
	}
	if !found {
		for _, l := range x.files {
			if p := l.match(path, isDir); p != nil {
				res = !p.negative
				break
			}
		}
	}
	if isDir {
		x.ignored[path] = res
	}
	return res, nil
}
