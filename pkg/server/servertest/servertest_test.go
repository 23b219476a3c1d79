package servertest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/server"
)

var errDomain = errors.New("no such account")

// TestCommonErrorsConform runs the shared cases on CommonErrors alone and on a sound table.
func TestCommonErrorsConform(t *testing.T) {
	CheckErrorTable(t, nil)
	CheckErrorTable(t, server.CommonErrors)
	CheckErrorTable(t, server.ErrorTable{{Is: errDomain, Code: codes.NotFound}})
}

// TestCheckFindsDrift requires the checks to fail on tables that drift from the shared answers.
func TestCheckFindsDrift(t *testing.T) {
	t.Parallel()
	failing := func(table server.ErrorTable) []string {
		var problems []string
		for _, c := range cases() {
			if err := checkCase(table, c); err != nil {
				problems = append(problems, err.Error())
			}
		}
		return problems
	}
	require.Empty(t, failing(server.CommonErrors))
	// A money error blamed on the service.
	drift := failing(server.ErrorTable{{Is: money.ErrUnknownCurrency, Code: codes.Internal}})
	require.Len(t, drift, 1)
	require.Contains(t, drift[0], "an invalid amount is the caller's: code Internal, want InvalidArgument")
	// Every error passed on with its text: leaks the cause.
	leaky := failing(server.ErrorTable{{Match: func(error) bool { return true }, Code: codes.Unavailable}})
	require.NotEmpty(t, leaky)
	require.Contains(t, fmt.Sprint(leaky), "leaks the cause")
}

// TestCheckRules requires the rule checks to name each malformed rule.
func TestCheckRules(t *testing.T) {
	t.Parallel()
	wrapped := fmt.Errorf("account: %w", errDomain)
	problems := checkRules(server.ErrorTable{
		{Is: errDomain, Code: codes.NotFound},
		{Code: codes.InvalidArgument},
		{Is: errors.New("fine"), Code: codes.OK},
		{Is: wrapped, Code: codes.FailedPrecondition},
	})
	require.Equal(t, []string{
		"rule 1 (InvalidArgument) matches nothing: set Is or Match",
		"rule 2 (fine) maps an error to OK",
		"rule 3 (account: no such account) is shadowed by rule 0",
	}, problems)
}
