package console_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/services/gateway/internal/console"
)

func write(t *testing.T, path, body string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(body), 0o644))
}

func TestConsole(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "index.html"), "<!doctype html><title>tally</title><div id=root></div>")
	write(t, filepath.Join(dir, "assets", "index-3f9a1c.js"), "console.log(1)")
	write(t, filepath.Join(dir, "favicon.svg"), "<svg/>")
	write(t, filepath.Join(dir, ".env"), "SECRET=1")
	outside := t.TempDir()
	write(t, filepath.Join(outside, "secret.txt"), "secret")
	require.NoError(t, os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(dir, "leak.txt")))
	h, err := console.New(dir)
	require.NoError(t, err)

	tests := []struct {
		name, method, path string
		want               int
		wantCache          string
		wantBody           string
	}{
		{"root", "GET", "/", http.StatusOK, "no-cache", "<div id=root>"},
		{"index.html", "GET", "/index.html", http.StatusOK, "no-cache", "<div id=root>"},
		{"page", "GET", "/billing", http.StatusOK, "no-cache", "<div id=root>"},
		{"nested page", "GET", "/settings/notifications", http.StatusOK, "no-cache", "<div id=root>"},
		{"head of a page", "HEAD", "/usage", http.StatusOK, "no-cache", ""},
		{"hashed asset", "GET", "/assets/index-3f9a1c.js", http.StatusOK, "public, max-age=31536000, immutable", "console.log(1)"},
		{"other file", "GET", "/favicon.svg", http.StatusOK, "no-cache", "<svg/>"},
		{"missing asset", "GET", "/assets/index-old.js", http.StatusNotFound, "", ""},
		{"missing file", "GET", "/robots.txt", http.StatusNotFound, "", ""},
		{"dotfile", "GET", "/.env", http.StatusNotFound, "", ""},
		{"symlink out of the directory", "GET", "/leak.txt", http.StatusNotFound, "", ""},
		{"dot-dot", "GET", "/../secret.txt", http.StatusNotFound, "", ""},
		{"post", "POST", "/billing", http.StatusMethodNotAllowed, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, "http://gw.test"+tt.path, nil))
			require.Equal(t, tt.want, rec.Code, rec.Body.String())
			if tt.wantCache != "" {
				require.Equal(t, tt.wantCache, rec.Header().Get("Cache-Control"))
			}
			require.Contains(t, rec.Body.String(), tt.wantBody)
			require.NotContains(t, rec.Body.String(), "secret")
		})
	}
}

func TestConsoleNotBuilt(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "web", "dist")
	h, err := console.New(dir)
	require.NoError(t, err)
	for _, p := range []string{"/", "/billing"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "http://gw.test"+p, nil))
		require.Equal(t, http.StatusOK, rec.Code)
		require.Equal(t, "text/html; charset=utf-8", rec.Header().Get("Content-Type"))
		require.Contains(t, rec.Body.String(), "make web")
		require.Contains(t, rec.Body.String(), `<html lang="en">`)
	}
	// Built later: served without a restart.
	write(t, filepath.Join(dir, "index.html"), "<div id=root></div>")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "http://gw.test/billing", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Body.String(), "<div id=root>")
}
