package signin

import (
	"crypto/subtle"
	"encoding/json"
	"html/template"
	"net/http"

	"google.golang.org/grpc/codes"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/services/gateway/internal/session"
)

// devPageTemplate is the development sign-in page: one button per development person.
var devPageTemplate = template.Must(template.New("dev").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in — tally (development)</title>
<style>
body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#111;background:#fff}
ul{list-style:none;padding:0}li{margin:0 0 .75rem}
button{width:100%;text-align:left;padding:.75rem 1rem;font:inherit;border:1px solid #555;border-radius:.375rem;background:#f4f4f5;color:#111;cursor:pointer}
button:hover{background:#e4e4e7}button:focus-visible{outline:3px solid #1d4ed8;outline-offset:2px}
.role{display:block;color:#3f3f46;font-size:.875rem}
</style>
</head>
<body>
<main>
<h1>Sign in to tally</h1>
<p>Development sign-in (<code>TALLY_ENV=development</code>): choose who you are. No password; production signs in with your identity provider.</p>
<ul aria-label="Development users">
{{- range .Users}}
<li>
<form method="post" action="/auth/dev">
<input type="hidden" name="user" value="{{.Key}}">
<input type="hidden" name="return_to" value="{{$.ReturnTo}}">
<button type="submit" aria-describedby="role-{{.Key}}">Sign in as {{.Claims.Name}}<span class="role" id="role-{{.Key}}">{{.Label}}</span></button>
</form>
</li>
{{- end}}
</ul>
</main>
</body>
</html>
`))

// devPage lists the development people, each signing in with one click.
func (s *Service) devPage(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Dev == nil {
		server.WriteHTTPError(w, http.StatusNotFound, codes.NotFound, "no such route")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	data := struct {
		Users    []auth.DevUser
		ReturnTo string
	}{auth.DevPeople(), SafeReturnTo(r.URL.Query().Get("return_to"))}
	if err := devPageTemplate.Execute(w, data); err != nil {
		s.log.Error("development sign-in page not written", "err", err)
	}
}

// devSignIn signs in as the development person of the form's user and goes back to return_to.
func (s *Service) devSignIn(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Dev == nil {
		server.WriteHTTPError(w, http.StatusNotFound, codes.NotFound, "no such route")
		return
	}
	// A foreign page must not sign this browser in as someone (login CSRF).
	if err := s.cfg.Origins.Check(r); err != nil {
		server.WriteHTTPError(w, http.StatusForbidden, codes.PermissionDenied, err.Error())
		return
	}
	if err := r.ParseForm(); err != nil {
		server.WriteHTTPError(w, http.StatusBadRequest, codes.InvalidArgument, "the form does not parse")
		return
	}
	u, ok := auth.DevUserByKey(r.PostForm.Get("user"))
	if !ok {
		server.WriteHTTPError(w, http.StatusBadRequest, codes.InvalidArgument, "user must be ada, grace or ops")
		return
	}
	now := s.cfg.Store.Now()
	tok, iat, exp, err := s.cfg.Dev.mint(u.Claims, now)
	if err != nil {
		s.internal(w, "development token not minted", err)
		return
	}
	sess, err := session.New(session.KindDev, u.Claims, tok, iat, exp, now.Add(s.cfg.SessionTTL))
	if err != nil {
		s.internal(w, "session not created", err)
		return
	}
	if err := s.cfg.Store.Save(w, sess); err != nil {
		s.internal(w, "session not saved", err)
		return
	}
	s.log.Info("signed in", "kind", session.KindDev, "sub", u.Claims.Subject)
	http.Redirect(w, r, SafeReturnTo(r.PostForm.Get("return_to")), http.StatusSeeOther) //nolint:gosec // G710: SafeReturnTo keeps only same-site paths
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func constantEqual(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
