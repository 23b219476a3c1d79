package notify

import (
	"strings"
	"time"
)

// KnownMember is an entry of an organization's member directory: a member the service has seen
// call it (their notification settings, which the console reads on every page), with the
// email, name and roles of their latest token. A role change is picked up at the member's next
// call.
type KnownMember struct {
	MemberID      string
	AccountEmail  string
	EmailOverride string
	Name          string
	IsAdmin       bool
	LastSeenAt    time.Time
}

// Email returns the address emails go to: the override, else the account email.
func (m KnownMember) Email() string { return addressOf(m.EmailOverride, m.AccountEmail) }

// foldAddress is the form in which two email addresses compare equal: case-insensitive, as
// the providers behind the tokens treat them.
func foldAddress(addr string) string {
	return strings.ToLower(strings.TrimSpace(addr))
}
