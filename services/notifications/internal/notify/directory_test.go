package notify_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/services/notifications/internal/notify"
)

func TestRechargeFailedEmailsGoToKnownAdminsAndUnknownRecipients(t *testing.T) {
	t.Parallel()
	ann := notify.KnownMember{MemberID: "ann", AccountEmail: "ann@example.com", IsAdmin: true}
	bob := notify.KnownMember{MemberID: "bob", AccountEmail: "bob@example.com", EmailOverride: "billing@example.com", IsAdmin: true}
	demoted := notify.KnownMember{MemberID: "dee", AccountEmail: "dee@example.com"}
	type sent struct{ to, member string }
	tests := []struct {
		name       string
		known      []notify.KnownMember
		recipients []string
		want       []sent
	}{
		{"admins only", []notify.KnownMember{ann, bob}, nil, []sent{{"ann@example.com", "ann"}, {"billing@example.com", "bob"}}},
		{"a recipient who is a known admin is emailed once, as the admin", []notify.KnownMember{ann}, []string{"ANN@example.com"},
			[]sent{{"ann@example.com", "ann"}}},
		{"a recipient the directory does not know", []notify.KnownMember{ann}, []string{"saver@example.com"},
			[]sent{{"ann@example.com", "ann"}, {"saver@example.com", ""}}},
		{"a recipient known as a member who is no admin gets none", []notify.KnownMember{ann, demoted}, []string{"dee@example.com"},
			[]sent{{"ann@example.com", "ann"}}},
		{"duplicate recipients", nil, []string{"x@example.com", "X@example.com"}, []sent{{"x@example.com", ""}}},
		{"an override shared with a recipient", []notify.KnownMember{bob}, []string{"billing@example.com"}, []sent{{"billing@example.com", "bob"}}},
		{"nobody", []notify.KnownMember{demoted}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := notify.RechargeFailed{OrgID: "acme", Key: "recharge:pay_1", Amount: usd(10), Recipients: tt.recipients}
			emails := notify.RechargeFailedEmails(r, tt.known, time.Unix(0, 0))
			var got []sent
			keys := map[string]bool{}
			for _, e := range emails {
				got = append(got, sent{e.To, e.MemberID})
				require.Equal(t, notify.KindRechargeDeclined, e.Kind)
				require.False(t, keys[e.IdempotencyKey], "keys are distinct")
				keys[e.IdempotencyKey] = true
			}
			require.Equal(t, tt.want, got)
			again := notify.RechargeFailedEmails(r, tt.known, time.Unix(60, 0))
			for i := range again {
				require.Equal(t, emails[i].IdempotencyKey, again[i].IdempotencyKey, "a retry has the same keys")
			}
		})
	}
}
