// Command tally-token mints HS256 tokens for local development and service-to-service calls.
//
// Usage:
//
//	tally-token -org acme -role member,admin -sub user-1 -email a@b.c -name "Ada" -ttl 24h
//	tally-token -service payments
//
// The token is signed with $TALLY_JWT_SECRET, or with the public development secret (and a
// warning on stderr) when the variable is unset: services accept that one only with
// TALLY_ENV=development. The lifetime may not exceed $TALLY_JWT_MAX_LIFETIME (default 24h), the
// longest services accept; $TALLY_JWT_ISSUER and $TALLY_JWT_AUDIENCE, when set, become the iss
// and aud claims services then require.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/server"
)

// The environment variables read, as the services read them.
const (
	secretEnv      = "TALLY_JWT_SECRET"
	maxLifetimeEnv = "TALLY_JWT_MAX_LIFETIME"
	issuerEnv      = "TALLY_JWT_ISSUER"
	audienceEnv    = "TALLY_JWT_AUDIENCE"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "tally-token:", err)
		os.Exit(2)
	}
}

// run parses args, mints the token and prints it on stdout.
func run(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("tally-token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		org     = fs.String("org", "", "organization id (org_id claim)")
		roles   = fs.String("role", string(auth.RoleMember), "comma-separated roles: member, admin, service, ops")
		sub     = fs.String("sub", "", "subject (user id); required unless -service is set")
		email   = fs.String("email", "", "email claim")
		name    = fs.String("name", "", "name claim")
		ttl     = fs.Duration("ttl", 24*time.Hour, "token lifetime, at most $"+maxLifetimeEnv+" (default 24h)")
		service = fs.String("service", "", "mint an internal service identity (sub=service:<name>, role service)")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	c := auth.Claims{Subject: *sub, OrgID: *org, Email: *email, Name: *name}
	if *service != "" {
		if set["sub"] {
			return errors.New("-sub and -service are mutually exclusive")
		}
		c.Subject = "service:" + *service
		c.Roles = []auth.Role{auth.RoleService}
	}
	if *service == "" || set["role"] {
		parsed, err := parseRoles(*roles)
		if err != nil {
			return err
		}
		for _, r := range parsed {
			if !c.Has(r) {
				c.Roles = append(c.Roles, r)
			}
		}
	}
	if c.Subject == "" {
		return errors.New("-sub or -service is required")
	}

	secret := getenv(secretEnv)
	if secret == "" {
		secret = server.DevJWTSecret
		fmt.Fprintf(stderr, "tally-token: warning: %s is not set; using the public development secret (accepted only with TALLY_ENV=development)\n", secretEnv)
	}
	opts := []auth.Option{}
	if v := getenv(maxLifetimeEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("%s: %q is not a positive duration", maxLifetimeEnv, v)
		}
		opts = append(opts, auth.WithMaxLifetime(d))
	}
	if v := getenv(issuerEnv); v != "" {
		opts = append(opts, auth.WithIssuer(v))
	}
	if v := getenv(audienceEnv); v != "" {
		opts = append(opts, auth.WithAudience(v))
	}
	token, err := auth.Mint([]byte(secret), c, *ttl, opts...)
	if err != nil {
		return fmt.Errorf("mint: %w", err)
	}
	if _, err := fmt.Fprintln(stdout, token); err != nil {
		return fmt.Errorf("write token: %w", err)
	}
	return nil
}

// parseRoles parses a comma-separated list of known roles.
func parseRoles(s string) ([]auth.Role, error) {
	var roles []auth.Role
	for part := range strings.SplitSeq(s, ",") {
		r := auth.Role(strings.TrimSpace(part))
		switch r {
		case "":
			continue
		case auth.RoleMember, auth.RoleAdmin, auth.RoleService, auth.RoleOps:
			roles = append(roles, r)
		default:
			return nil, fmt.Errorf("unknown role %q", r)
		}
	}
	if len(roles) == 0 {
		return nil, errors.New("-role is empty")
	}
	return roles, nil
}
