package emails_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/services/notifications/internal/emails"
	"github.com/tallyhq/tally/services/notifications/internal/notify"
)

func TestRenderEveryKind(t *testing.T) {
	t.Parallel()
	r, err := emails.NewRenderer("https://app.tally.dev/")
	require.NoError(t, err)
	data := notify.EmailData{
		OrgID: "acme", Currency: "USD", Balance: 12_500_000_000, Threshold: 20_000_000_000, Amount: -3_000_000_000,
		ExpiresAt: time.Date(2027, 1, 2, 3, 4, 0, 0, time.UTC), InstanceID: "gpu-1", Reason: "out of credits",
	}
	for _, k := range notify.EmailKinds {
		t.Run(string(k), func(t *testing.T) {
			t.Parallel()
			m, err := r.Render(k, data)
			require.NoError(t, err)
			require.Contains(t, m.Subject, "acme", "org id stands in for the unknown name")
			require.NotContains(t, m.Subject, "\n")
			require.Contains(t, m.Text, "acme")
			require.Contains(t, m.HTML, "<html")
			require.Contains(t, m.HTML, "https://app.tally.dev/settings/notifications")
			require.NotContains(t, m.Text+m.HTML, "-3.00", "amounts are shown as magnitudes")
		})
	}
	m, err := r.Render(notify.KindLowCredit, data)
	require.NoError(t, err)
	require.Contains(t, m.Text, "Current balance: $12.50")
	require.Contains(t, m.Text, "Alert threshold: $20.00")
	m, err = r.Render(notify.KindCreditsExpiring, data)
	require.NoError(t, err)
	require.Contains(t, m.Subject, "January 2, 2027 at 03:04 UTC")
}

// TestRenderLinksToConsole checks the one link each email leads to, in the text and the HTML
// body, and the settings link every email ends with.
func TestRenderLinksToConsole(t *testing.T) {
	t.Parallel()
	r, err := emails.NewRenderer("http://localhost:8080")
	require.NoError(t, err)
	data := notify.EmailData{OrgID: "acme", Currency: "USD", Balance: 1, Threshold: 2, Amount: 3,
		ExpiresAt: time.Date(2027, 1, 2, 3, 4, 0, 0, time.UTC), InstanceID: "gpu-1"}
	for _, tc := range []struct {
		kind notify.EmailKind
		link string
	}{
		{notify.KindLowCredit, "http://localhost:8080/billing"},
		{notify.KindCreditsExpiring, "http://localhost:8080/billing"},
		{notify.KindCreditsExpired, "http://localhost:8080/billing"},
		{notify.KindPaymentSucceeded, "http://localhost:8080/billing"},
		{notify.KindRentalSuspended, "http://localhost:8080/instances"},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			t.Parallel()
			m, err := r.Render(tc.kind, data)
			require.NoError(t, err)
			require.Contains(t, m.Text, tc.link+"\n")
			require.Contains(t, m.HTML, `href="`+tc.link+`"`)
			require.Contains(t, m.HTML, `href="http://localhost:8080/settings/notifications"`)
			require.NotContains(t, m.Text+m.HTML, "3000")
		})
	}
}

func TestRenderEscapesHTML(t *testing.T) {
	t.Parallel()
	r, err := emails.NewRenderer("http://localhost:8080")
	require.NoError(t, err)
	m, err := r.Render(notify.KindRentalSuspended, notify.EmailData{OrgID: "acme", OrgName: `<script>alert(1)</script>`, InstanceID: "i-1", Reason: `"><img src=x>`})
	require.NoError(t, err)
	require.NotContains(t, m.HTML, "<script>")
	require.NotContains(t, m.HTML, "<img")
	require.Contains(t, m.HTML, "&lt;script&gt;")
	require.True(t, strings.Contains(m.Text, "<script>"), "the text body is not HTML")
}

func TestNewRendererRefusesBadURLs(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "localhost:8080", "/billing", "javascript:alert(1)", "ftp://x", "https://x.test/?q=1"} {
		_, err := emails.NewRenderer(u)
		require.Error(t, err, u)
	}
}
