package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/tallyhq/tally/services/notifications/internal/notify"
)

// maxDirectoryAdmins bounds the admins one organization-wide notice reads.
const maxDirectoryAdmins = 100

// DirectoryMembers returns the organization's known admins and the known members whose account
// email is one of addresses (compared case-insensitively), by member id.
func (s *Store) DirectoryMembers(ctx context.Context, orgID string, addresses []string) ([]notify.KnownMember, error) {
	folded := make([]string, 0, len(addresses))
	for _, a := range addresses {
		folded = append(folded, strings.ToLower(strings.TrimSpace(a)))
	}
	rows, err := s.pool.Query(ctx, `(SELECT member_id, account_email, email_override, member_name, is_admin, last_seen_at
FROM member_settings WHERE org_id = $1 AND is_admin ORDER BY member_id LIMIT $3)
UNION
SELECT member_id, account_email, email_override, member_name, is_admin, last_seen_at
FROM member_settings WHERE org_id = $1 AND lower(account_email) = ANY($2)
ORDER BY member_id`, orgID, folded, maxDirectoryAdmins)
	if err != nil {
		return nil, fmt.Errorf("listing the directory of %s: %w", orgID, err)
	}
	members, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (notify.KnownMember, error) {
		var m notify.KnownMember
		err := r.Scan(&m.MemberID, &m.AccountEmail, &m.EmailOverride, &m.Name, &m.IsAdmin, &m.LastSeenAt)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading the directory of %s: %w", orgID, err)
	}
	return members, nil
}
