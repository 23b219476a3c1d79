package store_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/services/notifications/internal/notify"
)

// Each settings call records the caller in the directory; a call that changes nothing writes
// nothing (the row's version stays), and a changed role, email or name is written at once.
func TestSettingsCallsKeepTheDirectory(t *testing.T) {
	t.Parallel()
	st, pool := newStoreWithPool(t)
	ctx := t.Context()
	org := "dir-" + t.Name()
	xmin := func(id string) string {
		var v string
		require.NoError(t, pool.QueryRow(ctx, `SELECT xmin::text FROM member_settings WHERE org_id = $1 AND member_id = $2`, org, id).Scan(&v))
		return v
	}
	ann := notify.Member{OrgID: org, MemberID: "ann", IsAdmin: true, AccountEmail: "ann@example.com", Name: "Ann"}
	mia := notify.Member{OrgID: org, MemberID: "mia", AccountEmail: "mia@example.com", Name: "Mia"}
	for _, m := range []notify.Member{ann, mia} {
		_, _, err := st.EnsureSettings(ctx, m)
		require.NoError(t, err)
	}
	before := xmin("ann")
	_, _, err := st.EnsureSettings(ctx, ann)
	require.NoError(t, err)
	require.Equal(t, before, xmin("ann"), "an unchanged caller writes nothing")

	known, err := st.DirectoryMembers(ctx, org, []string{"MIA@example.com", "nobody@example.com"})
	require.NoError(t, err)
	require.Len(t, known, 2)
	require.Equal(t, notify.KnownMember{MemberID: "ann", AccountEmail: "ann@example.com", Name: "Ann", IsAdmin: true, LastSeenAt: known[0].LastSeenAt}, known[0])
	require.Equal(t, "mia", known[1].MemberID)
	require.False(t, known[1].IsAdmin)

	ann.IsAdmin = false
	_, _, err = st.EnsureSettings(ctx, ann)
	require.NoError(t, err)
	known, err = st.DirectoryMembers(ctx, org, nil)
	require.NoError(t, err)
	require.Empty(t, known, "a demoted admin leaves the admins at their next call")
}
