package ids_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/ids"
)

func TestID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, id string
		ok       bool
	}{
		{"simple", "acme", true},
		{"digit first", "1acme", true},
		{"punctuation inside", "a._:@-z", true},
		{"128 bytes", strings.Repeat("a", 128), true},
		{"129 bytes", strings.Repeat("a", 129), false},
		{"empty", "", false},
		{"leading dash", "-acme", false},
		{"leading dot", ".acme", false},
		{"leading at", "@acme", false},
		{"space", "ac me", false},
		{"slash", "ac/me", false},
		{"NUL", "ac\x00me", false},
		{"non-ASCII", "acmé", false},
		{"invalid UTF-8", "ac\xffme", false},
		{"bidi control", "ac\u202eme", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := ids.ID("org_id", tc.id)
			if tc.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ids.ErrInvalid)
			var e *ids.Error
			require.True(t, errors.As(err, &e))
			require.Equal(t, "org_id", e.Field)
			require.True(t, strings.HasPrefix(err.Error(), "org_id "), err.Error())
		})
	}
}

func TestOrgID(t *testing.T) {
	t.Parallel()
	require.NoError(t, ids.OrgID("acme"))
	err := ids.OrgID("-acme")
	require.ErrorIs(t, err, ids.ErrInvalid)
	require.Equal(t, "org_id must start with a letter or digit", err.Error())
}

func TestMemberID(t *testing.T) {
	t.Parallel()
	require.NoError(t, ids.MemberID("member_id", "user:alice@example.com"))
	require.NoError(t, ids.MemberID("member_id", "-x/y"))
	require.NoError(t, ids.MemberID("member_id", strings.Repeat("m", 256)))
	require.ErrorIs(t, ids.MemberID("member_id", strings.Repeat("m", 257)), ids.ErrInvalid)
	require.ErrorIs(t, ids.MemberID("member_id", ""), ids.ErrInvalid)
	require.ErrorIs(t, ids.MemberID("member_id", "a b"), ids.ErrInvalid)
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	require.NoError(t, ids.IdempotencyKey("idempotency_key", strings.Repeat("k", 255)))
	require.NoError(t, ids.IdempotencyKey("idempotency_key", "-/k!~"))
	for _, key := range []string{"", strings.Repeat("k", 256), "k k", "k\nk", "ké"} {
		err := ids.IdempotencyKey("idempotency_key", key)
		require.ErrorIs(t, err, ids.ErrInvalid, "%q", key)
		var e *ids.Error
		require.ErrorAs(t, err, &e)
		require.Equal(t, "idempotency_key", e.Field)
	}
}

// TestValidIDsDoNotAllocate requires the checks every write makes (its organization and
// idempotency key) to allocate nothing when the value is valid: they run on every debit.
func TestValidIDsDoNotAllocate(t *testing.T) {
	cases := []struct {
		name  string
		check func() error
	}{
		{"org id", func() error { return ids.OrgID("org-00042") }},
		{"idempotency key", func() error { return ids.IdempotencyKey("idempotency_key", "h-123456") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Zero(t, testing.AllocsPerRun(100, func() { require.NoError(t, tc.check()) }))
		})
	}
}

func TestUUID(t *testing.T) {
	t.Parallel()
	const want = "0f8fad5b-d9cb-469f-a165-70867728950e"
	for _, in := range []string{
		want,
		strings.ToUpper(want),
		"{" + want + "}",
		"urn:uuid:" + want,
		strings.ReplaceAll(want, "-", ""),
	} {
		got, err := ids.UUID("hold_id", in)
		require.NoError(t, err, in)
		require.Equal(t, want, got)
	}
	for _, in := range []string{
		"", "x", want + "0", want[:35], strings.Replace(want, "-", "_", 1), strings.Replace(want, "f", "g", 1),
		"[" + want + "]", "urn:uuix:" + want, strings.ReplaceAll(want, "-", "")[:31] + "z",
	} {
		_, err := ids.UUID("hold_id", in)
		require.ErrorIs(t, err, ids.ErrInvalid, in)
		require.Contains(t, err.Error(), "hold_id ")
	}
}

// FuzzID checks that ID accepts exactly the documented rule and never panics.
func FuzzID(f *testing.F) {
	for _, s := range []string{"acme", "-acme", "a._:@-z", strings.Repeat("a", 129), "acmé", "a\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ids.ID("id", s)
		require.Equal(t, rule(s), err == nil, "%q: %v", s, err)
		if err != nil {
			require.ErrorIs(t, err, ids.ErrInvalid)
		}
		if u, err := ids.UUID("id", s); err == nil {
			again, err := ids.UUID("id", u)
			require.NoError(t, err)
			require.Equal(t, u, again)
		}
	})
}

// rule is the identifier rule written out a second way.
func rule(s string) bool {
	if len(s) == 0 || len(s) > ids.MaxIDLength {
		return false
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }
	if !alnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !alnum(s[i]) && !strings.ContainsRune("._:@-", rune(s[i])) {
			return false
		}
	}
	return true
}
