// Package console serves the built web console (TALLY_CONSOLE_DIR, `make web` writes web/dist):
// its files, index.html for every other page path (the console routes in the browser), hashed
// assets cached for good and index.html never cached. While the directory holds no index.html,
// every page answers a short page saying how to build it.
package console

import (
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
)

// Cache-Control values.
const (
	// immutable is for files under /assets/: their names carry a hash of their content.
	immutable = "public, max-age=31536000, immutable"
	// revalidate is for index.html and the other files: always asked again.
	revalidate = "no-cache"
)

// notBuilt is the page served while the console is not built.
const notBuilt = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>tally console not built</title></head>
<body>
<main>
<h1>The tally console is not built yet</h1>
<p>Run <code>make web</code> in the repository, then reload this page. The REST API is served meanwhile under <code>/v1/</code> (OpenAPI at <a href="/openapi.json">/openapi.json</a>).</p>
</main>
</body>
</html>
`

// Handler serves the console in dir.
type Handler struct {
	dir string
}

// New returns a handler for the console in dir; dir may not exist yet (built later).
func New(dir string) (*Handler, error) {
	if dir == "" {
		return nil, errors.New("console: directory is required")
	}
	return &Handler{dir: dir}, nil
}

// open opens the console directory (a root: no symlink leads out of it), nil while it holds
// no index.html.
func (h *Handler) open() *os.Root {
	root, err := os.OpenRoot(h.dir)
	if err != nil {
		return nil
	}
	if fi, err := root.Stat("index.html"); err != nil || !fi.Mode().IsRegular() {
		_ = root.Close()
		return nil
	}
	return root
}

// ServeHTTP serves GET and HEAD requests for files and pages; other methods get 405.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	root := h.open()
	if root == nil {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write([]byte(notBuilt))
		}
		return
	}
	defer func() { _ = root.Close() }()
	fsys := root.FS()
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if name == "" || name == "index.html" {
		h.index(w, r, fsys)
		return
	}
	if fi, err := fs.Stat(fsys, name); err == nil && fi.Mode().IsRegular() && !hidden(name) {
		if strings.HasPrefix(name, "assets/") {
			w.Header().Set("Cache-Control", immutable)
		} else {
			w.Header().Set("Cache-Control", revalidate)
		}
		http.ServeFileFS(w, r, fsys, name) //nolint:gosec // G703: name is cleaned and fsys is an fs.FS rooted at the console dir (no "..")
		return
	}
	if strings.HasPrefix(name, "assets/") || path.Ext(name) != "" {
		// A missing asset is a 404, not the page: a stale index.html must not get HTML for a script.
		http.NotFound(w, r)
		return
	}
	h.index(w, r, fsys)
}

// index serves index.html (the console routes the path in the browser).
func (h *Handler) index(w http.ResponseWriter, r *http.Request, fsys fs.FS) {
	w.Header().Set("Cache-Control", revalidate)
	f, err := fsys.Open("index.html")
	if err != nil {
		http.Error(w, "console index not readable", http.StatusInternalServerError)
		return
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		http.Error(w, "console index not readable", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	rs, ok := f.(interface {
		Read([]byte) (int, error)
		Seek(int64, int) (int64, error)
	})
	if !ok {
		http.Error(w, "console index not readable", http.StatusInternalServerError)
		return
	}
	http.ServeContent(w, r, "index.html", fi.ModTime(), rs)
}

// hidden reports a dotfile anywhere in name (.env, .git/…): never served.
func hidden(name string) bool {
	for _, part := range strings.Split(name, "/") {
		if strings.HasPrefix(part, ".") {
			return true
		}
	}
	return false
}
