package gitx

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// spec is a pathspec without magic, made relative to the top of the work
// tree as git's prefix_path does.
type spec struct {
	orig       string
	match      string
	nowildcard int
}

// matches is git's match_pathspec_item for a file name: the spec names it,
// a folder holding it, or matches it as a wildmatch pattern (without
// WM_PATHNAME: '*' crosses '/') after its literal prefix.
func (s *spec) matches(name string) bool {
	m := s.match
	if m == "" {
		return true
	}
	if len(m) <= len(name) && name[:len(m)] == m {
		if len(m) == len(name) || m[len(m)-1] == '/' || name[len(m)] == '/' {
			return true
		}
	}
	if s.nowildcard < len(m) {
		nw := s.nowildcard
		if len(name) < nw || name[:nw] != m[:nw] {
			return false
		}
		return wildmatch(m[nw:], name[nw:], false)
	}
	return false
}

// literal is the spec's leading part without glob characters.
func (s *spec) literal() string { return s.match[:s.nowildcard] }

// makeSpecs turns pathspecs relative to prefix ("" or "dir/") into specs.
func makeSpecs(prefix string, pathspecs []string) ([]spec, error) {
	specs := make([]spec, 0, len(pathspecs))
	for _, p := range pathspecs {
		switch {
		case p == "":
			return nil, unsure("empty pathspec")
		case p[0] == ':':
			return nil, unsure("pathspec %q has magic", p)
		case filepath.IsAbs(p):
			return nil, unsure("pathspec %q is absolute", p)
		case strings.Contains(p, "[:"):
			return nil, unsure("pathspec %q uses a character class", p)
		}
		full := prefix + p
		glob := simpleLength(full) < len(full)
		var out []string
		comps := strings.Split(full, "/")
		for i, c := range comps {
			switch c {
			case "", ".":
				if glob && c == "." {
					return nil, unsure("pathspec %q mixes . and globs", p)
				}
				if i == len(comps)-1 && len(out) > 0 {
					out = append(out, "") // keep a trailing slash
				}
			case "..":
				if glob {
					return nil, unsure("pathspec %q mixes .. and globs", p)
				}
				if len(out) == 0 {
					return nil, unsure("pathspec %q is outside the repository", p)
				}
				out = out[:len(out)-1]
				if i == len(comps)-1 && len(out) > 0 {
					out = append(out, "")
				}
			default:
				out = append(out, c)
			}
		}
		m := strings.Join(out, "/")
		specs = append(specs, spec{orig: p, match: m, nowildcard: simpleLength(m)})
	}
	return specs, nil
}

// listed is one line of the listing.
type listed struct {
	path string
	mode uint32
	sha  [20]byte
}

// inproc is one in-process hash of a work tree's pathspecs.
type inproc struct {
	top      string
	idx      *gitIndex
	set      hashSettings
	ex       *excludes
	specs    []spec
	realDirs map[string]bool // folders ("" or "a/b/") checked to be real folders without attributes
	out      []listed
	matched  []bool
	seen     map[string]bool
}

// hashInProcess computes what HashInputs would print, without git, or
// returns an *errUnsure saying why git must be asked.
func hashInProcess(dir string, pathspecs []string) (string, error) {
	top, gitdir, common, ok := locateRepo(dir)
	if !ok {
		return "", unsure("repository layout left to git")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", unsure("%v", err)
	}
	prefix, err := filepath.Rel(top, abs)
	if err != nil || prefix == ".." || strings.HasPrefix(prefix, "../") {
		return "", unsure("folder outside the work tree")
	}
	realTop, err1 := filepath.EvalSymlinks(top)
	realDir, err2 := filepath.EvalSymlinks(abs)
	if err1 != nil || err2 != nil || filepath.Join(realTop, prefix) != realDir {
		return "", unsure("folder reached through a symbolic link")
	}
	if prefix == "." {
		prefix = ""
	} else {
		prefix = filepath.ToSlash(prefix) + "/"
	}
	cfg, err := readConfig(common)
	if err != nil {
		return "", err
	}
	set, err := settingsFor(cfg)
	if err != nil {
		return "", err
	}
	if _, err := os.Lstat(filepath.Join(common, "info", "attributes")); err == nil {
		return "", unsure("repository has info/attributes")
	}
	specs, err := makeSpecs(prefix, pathspecs)
	if err != nil {
		return "", err
	}
	idx, err := readIndex(filepath.Join(gitdir, "index"))
	if err != nil {
		return "", err
	}
	if idx.attributes {
		return "", unsure("repository has .gitattributes")
	}
	h := &inproc{top: top, idx: idx, set: set, specs: specs,
		realDirs: map[string]bool{}, matched: make([]bool, len(specs)), seen: map[string]bool{},
	}
	h.ex = &excludes{top: top, dirs: map[string]ignoreList{}, ignored: map[string]bool{}}
	for _, f := range []string{filepath.Join(common, "info", "exclude"), set.excludesFile} {
		if f == "" {
			continue
		}
		l, err := readIgnoreFile(f, "")
		if err != nil {
			return "", err
		}
		h.ex.files = append(h.ex.files, l)
	}
	if err := h.checkExplicit(); err != nil {
		return "", err
	}
	if err := h.addTracked(); err != nil {
		return "", err
	}
	if err := h.addUntracked(); err != nil {
		return "", err
	}
	for i, m := range h.matched {
		if !m {
			return "", unsure("pathspec %q matches nothing here", specs[i].orig)
		}
	}
	return h.listing(), nil
}

// checkExplicit refuses specs that name, or reach through, an ignored
// path: git reports those (and refuses some), the old path says how.
func (h *inproc) checkExplicit() error {
	for _, s := range h.specs {
		lit := strings.TrimSuffix(s.literal(), "/")
		if lit == "" {
			continue
		}
		parts := strings.Split(lit, "/")
		for i := range parts {
			p := strings.Join(parts[:i+1], "/")
			isDir := i < len(parts)-1
			if !isDir {
				if fi, err := os.Lstat(h.abs(p)); err == nil && fi.IsDir() {
					isDir = true
				}
			}
			ign, err := h.ex.isIgnored(p, isDir)
			if err != nil {
				return err
			}
			if ign {
				return unsure("pathspec %q names an ignored path", s.orig)
			}
			if isDir {
				if fi, err := os.Lstat(h.abs(p)); err == nil && !fi.IsDir() {
					break // the rest cannot exist
				}
			}
		}
	}
	return nil
}

func (h *inproc) abs(path string) string { return h.top + "/" + path }

// matchAll records which specs match name, and reports whether one does.
func (h *inproc) matchAll(name string) bool {
	any := false
	for i := range h.specs {
		if h.specs[i].matches(name) {
			h.matched[i] = true
			any = true
		}
	}
	return any
}

// isTracked reports whether the index has an entry at p. The entries are in
// path order (readIndex checks it), so a binary search finds it without a
// map of every entry.
func (h *inproc) isTracked(p string) bool {
	entries := h.idx.entries
	i := sort.Search(len(entries), func(i int) bool { return entries[i].path >= p })
	return i < len(entries) && entries[i].path == p
}

// addTracked lists the index entries the specs match, as `git add --all`
// leaves them: updated from the work tree, or gone when deleted.
func (h *inproc) addTracked() error {
	entries := h.idx.entries
	for _, r := range h.ranges() {
		for i := r[0]; i < r[1]; i++ {
			e := &entries[i]
			if h.seen[e.path] || !h.matchAll(e.path) {
				continue
			}
			h.seen[e.path] = true
			if e.mode == 0o160000 {
				return unsure("submodule %s among the inputs", e.path)
			}
			if err := checkName(e.path); err != nil {
				return err
			}
			ok, err := h.parentsReal(e.path)
			if err != nil {
				return err
			}
			if !ok {
				continue // below a symbolic link or a file: deleted
			}
			fi, err := os.Lstat(h.abs(e.path))
			if err != nil {
				if os.IsNotExist(err) || errors.Is(err, syscall.ENOTDIR) {
					continue
				}
				return unsure("%v", err)
			}
			switch {
			case fi.IsDir():
				continue // the file became a folder: its files are untracked
			case !fi.Mode().IsRegular() && fi.Mode()&fs.ModeSymlink == 0:
				return unsure("%s is neither a file nor a symbolic link", e.path)
			}
			l := listed{path: e.path, mode: h.modeOf(fi, e)}
			if statMatches(e, fi, h.set.fileMode) && !h.racy(e) {
				l.sha = e.sha
			} else if l.sha, err = hashFile(h.abs(e.path), fi); err != nil {
				return err
			}
			h.out = append(h.out, l)
		}
	}
	return nil
}

// ranges returns, for each spec, the range of index entries that start
// with its literal part: the only ones it can match.
func (h *inproc) ranges() [][2]int {
	entries := h.idx.entries
	var rs [][2]int
	for _, s := range h.specs {
		lit := s.literal()
		lo := sort.Search(len(entries), func(i int) bool { return entries[i].path >= lit })
		hi := lo + sort.Search(len(entries)-lo, func(i int) bool { return !strings.HasPrefix(entries[lo+i].path, lit) })
		rs = append(rs, [2]int{lo, hi})
	}
	return rs
}

// parentsReal reports whether every folder above path is a real folder, as
// git requires of a tracked file that is still there; a folder holding a
// .gitattributes file is an *errUnsure.
func (h *inproc) parentsReal(path string) (bool, error) {
	if ok, err := h.realDir(""); err != nil || !ok {
		return ok, err
	}
	for i := 0; i < len(path); i++ {
		if path[i] != '/' {
			continue
		}
		if ok, err := h.realDir(path[:i+1]); err != nil || !ok {
			return ok, err
		}
	}
	return true, nil
}

// realDir reports whether d ("" or "a/b/") is a folder, not a symbolic
// link, and has no .gitattributes.
func (h *inproc) realDir(d string) (bool, error) {
	if v, ok := h.realDirs[d]; ok {
		return v, nil
	}
	ok := true
	if d != "" {
		fi, err := os.Lstat(h.abs(strings.TrimSuffix(d, "/")))
		ok = err == nil && fi.IsDir()
	}
	if ok {
		if _, err := os.Lstat(h.abs(d + ".gitattributes")); err == nil {
			return false, unsure("%s.gitattributes may convert files", d)
		}
	}
	h.realDirs[d] = ok
	return ok, nil
}

// checkName refuses paths that git may refuse or treat specially.
func checkName(path string) error {
	for c := range strings.SplitSeq(path, "/") {
		lc := strings.ToLower(c)
		if strings.HasPrefix(lc, ".git") && c != ".gitignore" && c != ".gitkeep" || strings.HasPrefix(lc, "git~") {
			return unsure("path %q has a name git treats specially", path)
		}
	}
	return nil
}

// modeOf is git's ce_mode_from_stat: the mode git stores for a file.
func (h *inproc) modeOf(fi fs.FileInfo, e *indexEntry) uint32 {
	if fi.Mode()&fs.ModeSymlink != 0 {
		return 0o120000
	}
	if !h.set.fileMode {
		if e != nil && (e.mode == 0o100644 || e.mode == 0o100755) {
			return e.mode
		}
		return 0o100644
	}
	if fi.Mode()&0o100 != 0 {
		return 0o100755
	}
	return 0o100644
}

// statMatches reports whether fi has exactly the stat data e recorded,
// compared more strictly than git does: when it says yes, git also takes
// the entry's object id without reading the file.
func statMatches(e *indexEntry, fi fs.FileInfo, fileMode bool) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	isLink := fi.Mode()&fs.ModeSymlink != 0
	if isLink != (e.mode == 0o120000) {
		return false
	}
	if !isLink && fileMode && (fi.Mode()&0o100 != 0) != (e.mode == 0o100755) {
		return false
	}
	if e.size == 0 && e.sha != emptyBlob {
		return false
	}
	mt, ct := statTimes(st)
	return e.mtime == mt && e.ctime == ct &&
		e.dev == uint32(st.Dev) && e.ino == uint32(st.Ino) &&
		e.uid == st.Uid && e.gid == st.Gid && e.size == uint32(st.Size)
}

var emptyBlob = func() (b [20]byte) {
	hex.Decode(b[:], []byte("e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"))
	return b
}()

// racy reports whether e may be racily clean: its file changed in the
// second the index was written. Git reads such a file again; so do we.
func (h *inproc) racy(e *indexEntry) bool {
	return int64(e.mtime[0]) >= h.idx.mtime.Unix()
}

// hashFile returns the object id of the blob git would store for a file or
// a symbolic link.
func hashFile(name string, fi fs.FileInfo) ([20]byte, error) {
	var sum [20]byte
	hh := sha1.New()
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, err := os.Readlink(name)
		if err != nil {
			return sum, unsure("%v", err)
		}
		fmt.Fprintf(hh, "blob %d\x00%s", len(target), target)
	} else {
		f, err := os.Open(name)
		if err != nil {
			return sum, unsure("%v", err)
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return sum, unsure("%v", err)
		}
		fmt.Fprintf(hh, "blob %d\x00", fi.Size())
		n, err := io.Copy(hh, f)
		if err != nil || n != fi.Size() {
			return sum, unsure("%s changed while being read", name)
		}
	}
	copy(sum[:], hh.Sum(nil))
	return sum, nil
}

// addUntracked walks the folders the specs can match in and lists the
// files that are neither tracked nor ignored.
func (h *inproc) addUntracked() error {
	roots := map[string]bool{}
	for _, s := range h.specs {
		lit := s.literal()
		if s.nowildcard == len(s.match) && !strings.HasSuffix(lit, "/") && lit != "" {
			fi, err := os.Lstat(h.abs(lit))
			if err != nil {
				continue
			}
			if !fi.IsDir() {
				if err := h.addFile(lit, fi); err != nil {
					return err
				}
				continue
			}
			roots[lit+"/"] = true
			continue
		}
		roots[lit[:strings.LastIndexByte(lit, '/')+1]] = true
	}
	var sorted []string
	for r := range roots {
		sorted = append(sorted, r)
	}
	sort.Strings(sorted)
	var last string
	for i, r := range sorted {
		if i > 0 && strings.HasPrefix(r, last) {
			continue // walked with its parent
		}
		last = r
		ok, err := h.parentsReal(r + "x")
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if r != "" {
			ign, err := h.ex.isIgnored(strings.TrimSuffix(r, "/"), true)
			if err != nil {
				return err
			}
			if ign {
				continue
			}
		}
		if err := h.walk(r); err != nil {
			return err
		}
	}
	return nil
}

// mayMatchBelow reports whether a spec may match a path in folder d.
func (h *inproc) mayMatchBelow(d string) bool {
	for _, s := range h.specs {
		lit := s.literal()
		if strings.HasPrefix(d, lit) || strings.HasPrefix(lit, d) {
			return true
		}
	}
	return false
}

// walk lists the untracked files of folder d ("" or "a/b/"), not ignored,
// and the folders below it.
func (h *inproc) walk(d string) error {
	if !h.mayMatchBelow(d) {
		return nil
	}
	ents, err := os.ReadDir(h.abs(d))
	if err != nil {
		return unsure("%v", err)
	}
	for _, de := range ents {
		name := de.Name()
		p := d + name
		switch {
		case name == ".git":
			if d == "" {
				continue
			}
			return unsure("nested repository %s", d)
		case name == ".gitattributes":
			return unsure("%s may convert files", p)
		}
		if de.IsDir() {
			ign, err := h.ex.isIgnored(p, true)
			if err != nil {
				return err
			}
			if !ign {
				if err := h.walk(p + "/"); err != nil {
					return err
				}
			}
			continue
		}
		fi, err := de.Info()
		if err != nil {
			return unsure("%v", err)
		}
		if err := h.addFile(p, fi); err != nil {
			return err
		}
	}
	return nil
}

// addFile lists p if it is an untracked, not ignored file that a spec
// matches.
func (h *inproc) addFile(p string, fi fs.FileInfo) error {
	if h.isTracked(p) || h.seen[p] {
		return nil
	}
	if !fi.Mode().IsRegular() && fi.Mode()&fs.ModeSymlink == 0 {
		return unsure("%s is neither a file nor a symbolic link", p)
	}
	if !h.anyMatch(p) {
		return nil
	}
	if ok, err := h.parentsReal(p); err != nil || !ok {
		if err == nil {
			err = unsure("%s lies below a symbolic link", p)
		}
		return err
	}
	ign, err := h.ex.isIgnored(p, false)
	if err != nil || ign {
		return err
	}
	if err := checkName(p); err != nil {
		return err
	}
	h.matchAll(p)
	h.seen[p] = true
	l := listed{path: p, mode: h.modeOf(fi, nil)}
	if l.sha, err = hashFile(h.abs(p), fi); err != nil {
		return err
	}
	h.out = append(h.out, l)
	return nil
}

func (h *inproc) anyMatch(name string) bool {
	for i := range h.specs {
		if h.specs[i].matches(name) {
			return true
		}
	}
	return false
}

// listing prints the entries as `git ls-tree` does, in index order, with
// surrounding white space trimmed.
func (h *inproc) listing() string {
	sort.Slice(h.out, func(i, j int) bool { return h.out[i].path < h.out[j].path })
	var b strings.Builder
	for _, l := range h.out {
		fmt.Fprintf(&b, "%06o blob %x\t", l.mode, l.sha)
		b.WriteString(quotePath(l.path))
		b.WriteByte('\n')
	}
	return strings.TrimSpace(b.String())
}

// quotePath quotes a path as git does with core.quotePath true: names with
// control characters, '"', '\\', DEL or bytes of 0x80 and above are
// written in double quotes with C escapes and octal for the rest.
func quotePath(p string) string {
	need := false
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
			need = true
			break
		}
	}
	if !need {
		return p
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch c {
		case '\a':
			b.WriteString(`\a`)
		case '\b':
			b.WriteString(`\b`)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\v':
			b.WriteString(`\v`)
		case '\f':
			b.WriteString(`\f`)
		case '\r':
			b.WriteString(`\r`)
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		default:
			if c < 0x20 || c >= 0x7f {
				fmt.Fprintf(&b, "\\%03o", c)
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}
