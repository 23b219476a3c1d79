package service

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/tallyhq/tally/pkg/config"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/services/gateway/internal/oidc"
	"github.com/tallyhq/tally/services/gateway/internal/session"
	"github.com/tallyhq/tally/services/gateway/internal/signin"
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
	provider := loadOIDC(env, issuer, consoleURL)
	codec := loadCodec(env, issuer != "")
	if codec == nil {
		return wc
	}
	store, err := session.NewStore(codec)
	if err != nil {
		env.Invalid(err)
		return wc
	}
	origins := append(session.Origins{}, cors...)
	if consoleOrigin != "" {
		origins = append(origins, consoleOrigin)
	}
	svc, err := signin.New(signin.Config{
		Store: store, OIDC: provider, Dev: loadDevSignIn(env), Origins: origins, Logger: logger,
		SessionTTL: env.Duration("TALLY_SESSION_TTL", signin.DefaultSessionTTL),
	})
	if err != nil {
		env.Invalid(err)
		return wc
	}
	wc.signIn = svc
	return wc
}

// loadOIDC builds the identity provider's client when TALLY_OIDC_ISSUER is set (https outside
// development).
func loadOIDC(env *config.Env, issuer, consoleURL string) *oidc.Client {
	if issuer == "" {
		return nil
	}
	if u, err := url.Parse(issuer); err == nil && u.Scheme != "https" && !env.Development() {
		env.Invalid(errors.New("TALLY_OIDC_ISSUER must be https outside development"))
	}
	provider, err := oidc.New(oidc.Config{
		Issuer:       issuer,
		ClientID:     env.String("TALLY_OIDC_CLIENT_ID", ""),
		ClientSecret: env.String("TALLY_OIDC_CLIENT_SECRET", ""),
		RedirectURL:  env.String("TALLY_OIDC_REDIRECT_URL", strings.TrimSuffix(consoleURL, "/")+"/auth/callback"),
		Scopes:       strings.Fields(strings.ReplaceAll(env.String("TALLY_OIDC_SCOPES", "openid profile email offline_access"), ",", " ")),
		ForwardToken: env.String("TALLY_OIDC_FORWARD_TOKEN", oidc.ForwardAccessToken),
		Timeout:      env.Duration("TALLY_OIDC_TIMEOUT", oidc.DefaultTimeout),
	})
	env.Invalid(err)
	return provider
}

// loadCodec builds the session cookie codec from TALLY_SESSION_KEY, a development key, or (in
// production without a provider) a random one; nil when the configuration is invalid.
func loadCodec(env *config.Env, withProvider bool) *session.Codec {
	var codec *session.Codec
	var err error
	switch key := env.String("TALLY_SESSION_KEY", ""); {
	case key != "":
		codec, err = session.NewCodec([]byte(key))
		if err != nil {
			env.Invalid(fmt.Errorf("TALLY_SESSION_KEY: %w", err))
		}
	case env.Development():
		// A key derived from public material: sessions survive a restart during `make run`.
		codec, err = session.NewDevCodec()
		env.Invalid(err)
	case withProvider:
		env.Invalid(errors.New("TALLY_SESSION_KEY (at least 32 random bytes) is required with TALLY_OIDC_ISSUER outside development"))
	default:
		// Production without a provider: nobody can sign in, so no cookie is ever issued; a
		// random key keeps /auth/me answering 401 like everywhere else.
		random, rerr := session.RandomToken()
		env.Invalid(rerr)
		codec, err = session.NewCodec([]byte(random))
		env.Invalid(err)
	}
	return codec
}

// loadDevSignIn is the development sign-in (tokens minted with the development secret); nil
// outside development.
func loadDevSignIn(env *config.Env) *signin.DevConfig {
	if !env.Development() {
		return nil
	}
	// signin.New checks the secret's length.
	secret := env.String("TALLY_JWT_SECRET", server.DevJWTSecret)
	return &signin.DevConfig{Secret: []byte(secret), Issuer: env.String("TALLY_JWT_ISSUER", ""), Audience: env.String("TALLY_JWT_AUDIENCE", "")}
}
