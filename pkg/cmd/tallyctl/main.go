// Command tallyctl is the operators' command line over tally's gRPC API: balances and
// transactions of an organization, grants and adjustments, price changes, refunds, payment review
// items, email deliveries and rentals.
//
// It talks to each service directly (as the gateway does), with the bearer token of
// $TALLY_TOKEN or --token, and prints a table, or the API's own JSON with -o json. `tallyctl
// --help` and `tallyctl <command> --help` describe every command with examples; the README's
// "tallyctl" section walks through a session against `make run`.
//
// Exit status: 0 done, 1 the service refused or failed the request, 2 a usage error (nothing was
// sent), 3 a service could not be reached or did not answer in time, 4 the token was refused.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/grpc/codes"
)

// The exit statuses.
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitUnreachable = 3
	exitAuth        = 4
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run executes one command line and returns its exit status; errors are reported on stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	c := newCLI(stdout, stderr, getenv)
	defer c.close()
	root := c.rootCommand() //nolint:contextcheck // each command gets ctx from cobra (ExecuteContext → cmd.Context())
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	code := exitCode(err, c.ran)
	fmt.Fprintln(stderr, "tallyctl:", err)
	if code == exitUsage {
		fmt.Fprintln(stderr, "Run 'tallyctl --help' or 'tallyctl <command> --help' for usage.")
	}
	return code
}

// usageError is a mistake on the command line, found before anything was sent.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// exitCode classifies err. ran says whether a command's own code started: an error before that
// (an unknown command or flag, a missing argument) is a usage error.
func exitCode(err error, ran bool) int {
	var ce *callError
	var ue usageError
	switch {
	case errors.As(err, &ue) || !ran:
		return exitUsage
	case errors.As(err, &ce):
		switch ce.status.Code() {
		case codes.Unavailable, codes.DeadlineExceeded:
			return exitUnreachable
		case codes.Unauthenticated, codes.PermissionDenied:
			return exitAuth
		}
	}
	return exitFailed
}
