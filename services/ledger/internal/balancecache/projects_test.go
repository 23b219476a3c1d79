package balancecache

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

// An entry's project limits are trusted only when they are all there and of the entry's version:
// anything else reads as unknown (Authorize naming a project then reads PostgreSQL).
func TestProjectsField(t *testing.T) {
	t.Parallel()
	month := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	alpha := &ledger.ProjectLimit{Project: "alpha:a,b", Amount: 10, Spend: ledger.Spend{Month: month, Amount: 4}}
	limited := ledger.Account{Version: 7, Projects: map[string]*ledger.ProjectLimit{alpha.Project: alpha}, ProjectLimitCount: 1}
	for _, tc := range []struct {
		name     string
		field    string
		version  int64
		want     map[string]*ledger.ProjectLimit
		complete bool
	}{
		{"all of them, this version", encodeProjects(limited), 7, limited.Projects, true},
		{"none, this version", encodeProjects(ledger.Account{Version: 3}), 3, nil, true},
		{"another version's", encodeProjects(limited), 8, nil, false},
		{"a state read without them", encodeProjects(ledger.Account{Version: 7, ProjectLimitCount: 1}), 7, nil, false},
		{"missing (an older ledger's entry)", "", 7, nil, false},
		{"corrupt", "7:[{", 7, nil, false},
		{"no version", "[]", 7, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ps, n := decodeProjects(tc.field, tc.version)
			a := ledger.Account{Projects: ps, ProjectLimitCount: n}
			require.Equal(t, tc.complete, a.ProjectsComplete())
			require.Equal(t, tc.want, ps)
		})
	}
}
