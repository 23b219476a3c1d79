package balancecache

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

// projectsField ("pl") holds an entry's project limits: "<version>:<json>", the JSON an array
// of cachedProject, every project limit of the account at that version. It is written by the
// same HSET as the rest of the entry; the version prefix makes a field left behind by an older
// write (say, by a ledger replica that does not write it, during a rolling upgrade) unknown
// rather than the project limits of a newer version. unknownProjects stands for a state read
// without its project limits.
const unknownProjects = "?"

// cachedProject is one project limit of an entry.
type cachedProject struct {
	Project string `json:"p"`
	Limit   int64  `json:"l"`
	Month   int64  `json:"m"` // unix seconds
	Spend   int64  `json:"s"`
}

// encodeProjects is the projectsField of a.
func encodeProjects(a ledger.Account) string {
	if !a.ProjectsComplete() {
		return unknownProjects
	}
	ps := make([]cachedProject, 0, len(a.Projects))
	for _, p := range a.Projects {
		ps = append(ps, cachedProject{Project: p.Project, Limit: int64(p.Amount), Month: p.Spend.Month.Unix(), Spend: int64(p.Spend.Amount)})
	}
	raw, err := json.Marshal(ps)
	if err != nil {
		return unknownProjects
	}
	return strconv.FormatInt(a.Version, 10) + ":" + string(raw)
}

// decodeProjects reads the projectsField of an entry at version: the project limits and their
// count, or a count of -1 (never complete, ledger.Account.ProjectsComplete) when the field is
// missing, unknown, corrupt or of another version.
func decodeProjects(field string, version int64) (map[string]*ledger.ProjectLimit, int) {
	v, raw, ok := strings.Cut(field, ":")
	if !ok || v != strconv.FormatInt(version, 10) {
		return nil, -1
	}
	var ps []cachedProject
	if err := json.Unmarshal([]byte(raw), &ps); err != nil {
		return nil, -1
	}
	if len(ps) == 0 {
		return nil, 0
	}
	out := make(map[string]*ledger.ProjectLimit, len(ps))
	for _, p := range ps {
		out[p.Project] = &ledger.ProjectLimit{Project: p.Project, Amount: money.Nanos(p.Limit),
			Spend: ledger.Spend{Month: time.Unix(p.Month, 0).UTC(), Amount: money.Nanos(p.Spend)}}
	}
	if len(out) != len(ps) {
		return nil, -1
	}
	return out, len(out)
}
