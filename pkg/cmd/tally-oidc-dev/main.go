// Command tally-oidc-dev runs a local OpenID Connect provider for the console's sign-in in
// development and in the browser tests: it signs in the development people of acme (Ada
// Lovelace, member; Grace Hopper, admin; Ops) without a password, picked by the login_hint of
// the sign-in (ada, grace, ops or their email; Ada when none), with ID tokens carrying tally's
// claims. It prints its issuer on the first line of its output and the gateway and service
// settings that trust it after.
//
//	tally-oidc-dev -addr 127.0.0.1:8099
//
// It listens on the loopback interface only: it signs anyone in.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/auth/oidcdev"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8099", "loopback address to listen on (port 0 picks a free one)")
	flag.Parse()
	if err := run(*addr); err != nil {
		fmt.Fprintln(os.Stderr, "tally-oidc-dev:", err)
		os.Exit(1)
	}
}

func run(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("-addr %q: only a loopback address is allowed (this provider signs anyone in)", addr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	p, err := oidcdev.Start(ln, auth.DevPeople())
	if err != nil {
		_ = ln.Close()
		return err
	}
	fmt.Println(p.Issuer())
	fmt.Printf(`gateway:  TALLY_OIDC_ISSUER=%s TALLY_OIDC_CLIENT_ID=%s TALLY_OIDC_CLIENT_SECRET=%s TALLY_OIDC_FORWARD_TOKEN=id_token TALLY_OIDC_SCOPES="openid %s"
services: TALLY_JWKS_URL=%s TALLY_JWT_ISSUER=%s TALLY_JWT_AUDIENCE=%s
users:    ada (member of acme), grace (admin of acme), ops — chosen by /auth/login?login_hint=<user>, Ada by default
`, p.Issuer(), oidcdev.ClientID, oidcdev.ClientSecret, strings.Join(oidcdev.Scopes, " "), p.JWKSEndpoint(), p.Issuer(), oidcdev.ClientID)
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Server.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	return nil
}
