// Package emails renders notification emails: a subject, a text body (text/template) and an
// HTML body (html/template, which escapes every value) per kind of email.
package emails

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"

	"github.com/tallyhq/tally/pkg/config"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/notifications/internal/notify"
)

//go:embed templates
var files embed.FS

// Message is a rendered email.
type Message struct {
	Subject string
	Text    string
	HTML    string
}

type kindTemplates struct {
	text *texttemplate.Template
	html *htmltemplate.Template
}

// Renderer renders emails with links into the web console.
type Renderer struct {
	consoleURL string
	kinds      map[notify.EmailKind]kindTemplates
}

// NewRenderer parses the templates of every kind. consoleURL is the web console's base URL, e.g.
// "https://console.tally.dev" (TALLY_CONSOLE_URL).
func NewRenderer(consoleURL string) (*Renderer, error) {
	// The mode's https rule is config.Env.ConsoleURL's; here any absolute http(s) URL goes.
	base, err := config.ParseConsoleURL(consoleURL, true)
	if err != nil {
		return nil, fmt.Errorf("emails: console URL: %w", err)
	}
	r := &Renderer{consoleURL: base, kinds: map[notify.EmailKind]kindTemplates{}}
	for _, k := range notify.EmailKinds {
		name := "templates/" + string(k) + ".tmpl"
		text, err := texttemplate.New(string(k)).Option("missingkey=error").ParseFS(files, name)
		if err != nil {
			return nil, fmt.Errorf("emails: parsing %s: %w", name, err)
		}
		html, err := htmltemplate.New(string(k)).Option("missingkey=error").ParseFS(files, "templates/layout.html", name)
		if err != nil {
			return nil, fmt.Errorf("emails: parsing %s: %w", name, err)
		}
		r.kinds[k] = kindTemplates{text: text, html: html}
	}
	return r, nil
}

// view is what the templates see: amounts already formatted as "12.50 USD".
type view struct {
	OrgID         string
	OrgName       string
	Balance       string
	Threshold     string
	Amount        string
	ExpiresAt     string
	InstanceID    string
	Reason        string
	Failures      int
	RuleDisabled  bool
	AddCreditsURL string
	BillingURL    string
	SettingsURL   string
	InstancesURL  string
}

// Links into the console, relative to its base URL: Add Credits is reached from the Billing page.
const (
	BillingPath   = "/billing"
	SettingsPath  = "/settings/notifications"
	InstancesPath = "/instances"
)

// AddCreditsURL returns the link behind "Add Credits": the console's Billing page.
func (r *Renderer) AddCreditsURL() string { return r.consoleURL + BillingPath }

// Render renders an email of kind k.
func (r *Renderer) Render(k notify.EmailKind, d notify.EmailData) (Message, error) {
	t, ok := r.kinds[k]
	if !ok {
		return Message{}, fmt.Errorf("emails: unknown kind %q", k)
	}
	v := view{
		OrgID:         d.OrgID,
		OrgName:       d.OrgName,
		Threshold:     format(d.Threshold, d.Currency),
		Amount:        format(abs(d.Amount), d.Currency), // expiries carry negative amounts
		InstanceID:    d.InstanceID,
		Reason:        d.Reason,
		Failures:      d.Failures,
		RuleDisabled:  d.RuleDisabled,
		AddCreditsURL: r.AddCreditsURL(),
		BillingURL:    r.consoleURL + BillingPath,
		SettingsURL:   r.consoleURL + SettingsPath,
		InstancesURL:  r.consoleURL + InstancesPath,
	}
	if v.OrgName == "" {
		v.OrgName = d.OrgID
	}
	if d.Currency != "" {
		v.Balance = format(d.Balance, d.Currency)
	}
	if !d.ExpiresAt.IsZero() {
		v.ExpiresAt = d.ExpiresAt.UTC().Format("January 2, 2006 at 15:04 UTC")
	}
	var subject, text, html bytes.Buffer
	if err := t.text.ExecuteTemplate(&subject, "subject", v); err != nil {
		return Message{}, fmt.Errorf("emails: rendering %s subject: %w", k, err)
	}
	if err := t.text.ExecuteTemplate(&text, "text", v); err != nil {
		return Message{}, fmt.Errorf("emails: rendering %s text: %w", k, err)
	}
	if err := t.html.ExecuteTemplate(&html, "layout", v); err != nil {
		return Message{}, fmt.Errorf("emails: rendering %s html: %w", k, err)
	}
	s := strings.Join(strings.Fields(subject.String()), " ")
	if s == "" {
		return Message{}, errors.New("emails: empty subject")
	}
	return Message{Subject: s, Text: strings.TrimSpace(text.String()) + "\n", HTML: html.String()}, nil
}

func abs(n money.Nanos) money.Nanos {
	if n < 0 {
		return -n
	}
	return n
}

// format writes amounts the way the console does (money.Format), so an email and the page its
// link opens show the same figure.
func format(n money.Nanos, currency string) string {
	return money.Format(money.Money{Nanos: n, Currency: currency})
}
