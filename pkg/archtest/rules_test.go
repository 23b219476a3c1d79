package archtest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRules(t *testing.T) {
	const l = Root + "services/ledger/"
	cases := []struct {
		name  string
		pkg   Package
		wants []string
	}{
		{"domain imports grpc", Package{ImportPath: l + "internal/ledger", Imports: []string{"google.golang.org/grpc/codes", "errors"}},
			[]string{"R1 services/ledger/internal/ledger -> google.golang.org/grpc/codes"}},
		{"domain imports another internal package", Package{ImportPath: l + "internal/ledger", Imports: []string{l + "internal/store"}},
			[]string{"R1 services/ledger/internal/ledger -> services/ledger/internal/store", "R4 services/ledger/internal/ledger -> services/ledger/internal/store"}},
		{"domain subpackage may import its parent", Package{ImportPath: l + "internal/ledger/x", Imports: []string{l + "internal/ledger"}}, nil},
		{"domain imports os", Package{ImportPath: l + "internal/ledger", Imports: []string{"os"}},
			[]string{"R1 services/ledger/internal/ledger -> os"}},
		{"store imports app", Package{ImportPath: l + "internal/store", Imports: []string{l + "internal/app", l + "internal/ledger"}},
			[]string{"R2 services/ledger/internal/store -> services/ledger/internal/app"}},
		{"grpcapi imports store and pgx", Package{ImportPath: l + "internal/grpcapi", Imports: []string{l + "internal/store", "github.com/jackc/pgx/v5/pgconn"}},
			[]string{"R3 services/ledger/internal/grpcapi -> github.com/jackc/pgx/v5/pgconn", "R3 services/ledger/internal/grpcapi -> services/ledger/internal/store", "R4 services/ledger/internal/grpcapi -> services/ledger/internal/store"}},
		{"app may import store and the client", Package{ImportPath: l + "internal/app", Imports: []string{l + "internal/store", Root + "pkg/ledgerclient"}}, nil},
		{"app imports codes", Package{ImportPath: l + "internal/app", Imports: []string{"google.golang.org/grpc/codes"}},
			[]string{"R5 services/ledger/internal/app -> google.golang.org/grpc/codes"}},
		{"worker imports store", Package{ImportPath: Root + "services/notifications/internal/evaluator", Imports: []string{Root + "services/notifications/internal/store"}},
			[]string{"R4 services/notifications/internal/evaluator -> services/notifications/internal/store"}},
		{"another module's service in a test", Package{ImportPath: Root + "services/gateway/restfuzz", XTestImports: []string{Root + "services/payments/service"}},
			[]string{"R6 services/gateway/restfuzz -> services/payments/service"}},
		{"another module's harness is fine", Package{ImportPath: Root + "services/gateway/restfuzz", TestImports: []string{Root + "services/pricing/pricingtest"}}, nil},
		{"main imports more than the composition root", Package{ImportPath: l + "cmd/ledger", Imports: []string{l + "internal/service", Root + "pkg/server", "github.com/redis/go-redis/v9", "context", l + "internal/app"}},
			[]string{"R7 services/ledger/cmd/ledger -> services/ledger/internal/app"}},
		{"benches are not the main", Package{ImportPath: l + "cmd/ledger-bench", Imports: []string{l + "ledgertest", "fmt"}}, nil},
		{"testing outside a harness", Package{ImportPath: Root + "pkg/money", Imports: []string{"testing"}},
			[]string{"R8 pkg/money -> testing"}},
		{"testing in a harness", Package{ImportPath: Root + "pkg/auth/authtest", Imports: []string{"testing"}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, v := range Check([]Package{c.pkg}) {
				got = append(got, v.String())
			}
			assert.Equal(t, c.wants, got)
		})
	}
}

func TestDiffAndParse(t *testing.T) {
	known, err := ParseKnown("# comment\n\nR4 a -> b\nR6 c -> d\n")
	require.NoError(t, err)
	added, stale := Diff([]Violation{{Rule: "R4", From: "a", To: "b"}, {Rule: "R1", From: "x", To: "y"}}, known)
	assert.Equal(t, []string{"R1 x -> y"}, added)
	assert.Equal(t, []string{"R6 c -> d"}, stale)
	_, err = ParseKnown("a imports b\n")
	require.Error(t, err)
	assert.Equal(t, "ledger", Violation{From: "services/ledger/cmd/ledger-bench"}.Module())
	assert.Equal(t, "pkg", Violation{From: "pkg/chaos"}.Module())
}

func TestSharedPlumbingMayImportTheClient(t *testing.T) {
	assert.Empty(t, Check([]Package{{ImportPath: Root + "pkg/server", Imports: []string{Root + "pkg/ledgerclient"}}}))
}
