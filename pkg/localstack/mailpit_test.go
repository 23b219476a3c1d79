package localstack

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// scriptSrc finds the web UI's script in mailpit's page: <script src="/dist/app.js?v1.27.11" …>.
var scriptSrc = regexp.MustCompile(`<script src="([^"]*dist/app\.js[^"]*)"`)

// TestMailpitWebUI loads the running catcher's page and its JavaScript bundle: a mailpit built
// without its UI (a plain `go install`) serves the page but answers 404 for the bundle, a blank
// page in a browser. `make tools` builds the UI from the module source (npm) before `go build`.
func TestMailpitWebUI(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	m, err := StartMailpit(ctx, MailpitConfig{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Stop(context.Background()) })

	status, ctype, page := get(ctx, t, m.HTTPURL()+"/")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, ctype, "text/html")
	src := scriptSrc.FindStringSubmatch(page)
	require.NotNil(t, src, "the page names its script: %.300s", page)

	status, ctype, js := get(ctx, t, m.HTTPURL()+"/"+strings.TrimPrefix(src[1], "/"))
	require.Equal(t, http.StatusOK, status,
		"mailpit's web UI bundle is missing (a go-installed mailpit): rm bin/mailpit && make tools")
	require.Contains(t, ctype, "javascript")
	require.Greater(t, len(js), 100<<10, "the bundle is the whole Vue app")
	status, ctype, _ = get(ctx, t, m.HTTPURL()+"/dist/app.css")
	require.Equal(t, http.StatusOK, status, "the UI's stylesheet")
	require.Contains(t, ctype, "text/css")
}

func get(ctx context.Context, t *testing.T, url string) (status int, contentType, body string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}
