// Command tally-token mints HS256 tokens for local development and service-to-service calls.
//
// Usage:
//
//	tally-token -org acme -role member,admin -sub user-1 -email a@b.c -name "Ada" -ttl 24h
//	tally-token -service payments
//
// The token is signed with $TALLY_JWT_SECRET, or with an insecure development secret (and a
// warning on stderr) when the variable is unset.
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
)

// Secret settings.
const (
	secretEnv = "TALLY_JWT_SECRET"
	devSecret = "tally-dev-secret-change-me"
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
		ttl     = fs.Duration("ttl", 24*time.Hour, "token lifetime")
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
		secret = devSecret
		fmt.Fprintf(stderr, "tally-token: warning: %s is not set; using the insecure development secret\n", secretEnv)
	}
	token, err := auth.Mint([]byte(secret), c, *ttl)
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
