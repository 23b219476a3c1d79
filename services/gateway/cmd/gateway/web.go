package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/config"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/services/gateway/oidc"
	"github.com/tallyhq/tally/services/gateway/session"
	"github.com/tallyhq/tally/services/gateway/signin"
)

// webConfig is the console side of the gateway: sessions, sign-in, console files, CORS.
type webConfig struct {
	consoleDir  string
	corsOrigins session.Origins
	signIn      *signin.Service
}

// loadWeb reads the console settings (see the README's configuration table) and builds the
// sign-in service, recording every problem in env.
func loadWeb(env *config.Env, logger *slog.Logger) webConfig {
	dev := env.Development()
	consoleURL := env.String("TALLY_CONSOLE_URL", "http://localhost:8080")
	consoleOrigin, err := session.CanonicalOrigin(consoleURL)
	if err != nil {
		env.Invalid(fmt.Errorf("TALLY_CONSOLE_URL: %w", err))
	}
	cors, err := session.ParseOrigins(env.String("TALLY_CORS_ORIGINS", ""))
	if err != nil {
		env.Invalid(fmt.Errorf("TALLY_CORS_ORIGINS: %w", err))
	}
	wc := webConfig{consoleDir: env.String("TALLY_CONSOLE_DIR", ""), corsOrigins: cors}

	issuer := env.String("TALLY_OIDC_ISSUER", "")
	var provider *oidc.Client
	if issuer != "" {
		if u, err := url.Parse(issuer); err == nil && u.Scheme != "https" && !dev {
			env.Invalid(errors.New("TALLY_OIDC_ISSUER must be https outside development"))
		}
		provider, err = oidc.New(oidc.Config{
			Issuer:       issuer,
			ClientID:     env.String("TALLY_OIDC_CLIENT_ID", ""),
			ClientSecret: env.String("TALLY_OIDC_CLIENT_SECRET", ""),
			RedirectURL:  env.String("TALLY_OIDC_REDIRECT_URL", strings.TrimSuffix(consoleURL, "/")+"/auth/callback"),
			Scopes:       strings.Fields(strings.ReplaceAll(env.String("TALLY_OIDC_SCOPES", "openid profile email offline_access"), ",", " ")),
			ForwardToken: env.String("TALLY_OIDC_FORWARD_TOKEN", oidc.ForwardAccessToken),
			Timeout:      env.Duration("TALLY_OIDC_TIMEOUT", oidc.DefaultTimeout),
		})
		env.Invalid(err)
	}

	var codec *session.Codec
	switch key := env.String("TALLY_SESSION_KEY", ""); {
	case key != "":
		codec, err = session.NewCodec([]byte(key))
		if err != nil {
			env.Invalid(fmt.Errorf("TALLY_SESSION_KEY: %w", err))
		}
	case dev:
		// A key derived from public material: sessions survive a restart during `make run`.
		codec, err = session.NewDevCodec()
		env.Invalid(err)
	case issuer != "":
		env.Invalid(errors.New("TALLY_SESSION_KEY (at least 32 random bytes) is required with TALLY_OIDC_ISSUER outside development"))
	default:
		// Production without a provider: nobody can sign in, so no cookie is ever issued; a
		// random key keeps /auth/me answering 401 like everywhere else.
		random, rerr := session.RandomToken()
		env.Invalid(rerr)
		codec, err = session.NewCodec([]byte(random))
		env.Invalid(err)
	}
	if codec == nil {
		return wc
	}
	store, err := session.NewStore(codec)
	if err != nil {
		env.Invalid(err)
		return wc
	}
	var devSignIn *signin.DevConfig
	if dev {
		secret := env.String("TALLY_JWT_SECRET", server.DevJWTSecret)
		if len(secret) < auth.MinSecretLen {
			env.Invalid(fmt.Errorf("TALLY_JWT_SECRET must be at least %d bytes", auth.MinSecretLen))
		}
		devSignIn = &signin.DevConfig{Secret: []byte(secret), Issuer: env.String("TALLY_JWT_ISSUER", ""), Audience: env.String("TALLY_JWT_AUDIENCE", "")}
	}
	origins := append(session.Origins{}, cors...)
	if consoleOrigin != "" {
		origins = append(origins, consoleOrigin)
	}
	svc, err := signin.New(signin.Config{
		Store: store, OIDC: provider, Dev: devSignIn, Origins: origins, Logger: logger,
		SessionTTL: env.Duration("TALLY_SESSION_TTL", signin.DefaultSessionTTL),
	})
	if err != nil {
		env.Invalid(err)
		return wc
	}
	wc.signIn = svc
	return wc
}
