package cache

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"gocloud.dev/blob/fileblob"
)

// attrsSuffix is the name fileblob gives the file beside each object that
// holds its attributes.
const attrsSuffix = ".attrs"

// openFolder returns the folder store rooted at dir, an absolute path, which
// is created if missing.
//
// What fileblob leaves in the folder, for a user who looks at it or syncs it:
//
//   - each object is a file at dir/<key>, in subfolders along the key's "/";
//   - beside it, <key>.attrs, a small JSON file holding the content type and
//     the MD5 of the data: this is how the content type is kept. fileblob
//     hides these files from its listings and refuses keys that end in
//     ".attrs", so this store refuses them too. Deleting an .attrs file only
//     loses the content type (it reads back as application/octet-stream);
//   - while a writer is open, a temporary file <key>.<hex>.tmp beside the
//     object, renamed over <key> when Close succeeds and removed when it
//     fails. A process killed mid-write can leave one behind; it is never
//     read as an object and can be deleted. The temporary file is kept in
//     the folder rather than in $TMPDIR (fileblob's NoTempDir) because a
//     rename from another file system, such as a tmpfs /tmp, would fail.
//
// fileblob writes the .attrs file in place and then renames the data over
// the object, so a Get racing with an overwrite of the same key may fail (a
// half-written .attrs) or see the new content type with the old data; the
// data itself is never torn.
func openFolder(dir string) (Store, error) {
	b, err := fileblob.OpenBucket(dir, &fileblob.Options{
		CreateDir:   true,
		NoTempDir:   true,
		DirFileMode: 0o777, // less the umask, like mkdir
		Metadata:    fileblob.MetadataInSidecar,
	})
	if err != nil {
		return nil, fmt.Errorf("cannot use the cache folder %s: %w", dir, err)
	}
	base := (&url.URL{Scheme: "file", Path: filepath.ToSlash(dir)}).String()
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	return &blobStore{
		bucket:  b,
		base:    base,
		explain: explainPath,
		checkKey: func(key string) error {
			if strings.HasSuffix(key, attrsSuffix) {
				return fmt.Errorf("%w %q: a folder store keeps %s files for itself", ErrInvalidKey, key, attrsSuffix)
			}
			return nil
		},
	}, nil
}
