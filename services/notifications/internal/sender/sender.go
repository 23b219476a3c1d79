// Package sender is the SMTP client (github.com/wneessen/go-mail) of the send loop
// (app.SendLoop): it renders a queued email and makes one attempt at sending it. Every attempt
// of an email carries the same Message-ID, derived from the email's id.
package sender

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/tallyhq/tally/services/notifications/internal/emails"
	"github.com/tallyhq/tally/services/notifications/internal/notify"
)

// TLSMode says how the SMTP connection is secured.
type TLSMode string

// TLS modes.
const (
	// TLSNone is plain SMTP (a local catcher such as mailpit).
	TLSNone TLSMode = "none"
	// TLSStartTLS upgrades the connection with STARTTLS and refuses servers that cannot.
	TLSStartTLS TLSMode = "starttls"
	// TLSImplicit connects over TLS from the start (SMTPS, usually port 465).
	TLSImplicit TLSMode = "tls"
)

// ParseTLSMode parses "none", "starttls" or "tls".
func ParseTLSMode(s string) (TLSMode, error) {
	switch m := TLSMode(strings.ToLower(s)); m {
	case TLSNone, TLSStartTLS, TLSImplicit:
		return m, nil
	}
	return "", fmt.Errorf("TLS mode %q is not one of none, starttls, tls", s)
}

// SMTPConfig says where and how to send.
type SMTPConfig struct {
	Host     string
	Port     int
	Username string
	Password string
	TLS      TLSMode
	// From is the sender, e.g. "Tally <notifications@tally.dev>".
	From string
	// Timeout bounds connecting and each SMTP command.
	Timeout time.Duration
}

// Config configures a Mailer.
type Config struct {
	SMTP     SMTPConfig
	Renderer *emails.Renderer
}

// Mailer builds and sends emails.
type Mailer struct {
	cfg    Config
	from   *mail.Address
	domain string
}

// New checks cfg and returns a Mailer.
func New(cfg Config) (*Mailer, error) {
	if cfg.Renderer == nil {
		return nil, errors.New("sender: renderer is required")
	}
	from, err := mail.ParseAddress(cfg.SMTP.From)
	if err != nil {
		return nil, fmt.Errorf("sender: from address %q: %w", cfg.SMTP.From, err)
	}
	_, domain, _ := strings.Cut(from.Address, "@")
	if _, err := newClient(cfg.SMTP); err != nil {
		return nil, err
	}
	return &Mailer{cfg: cfg, from: from, domain: domain}, nil
}

// Timeout is the bound of connecting and of each SMTP command (default 15s).
func (m *Mailer) Timeout() time.Duration { return smtpTimeout(m.cfg.SMTP) }

// Conn is one SMTP client; a go-mail Client is not shared between concurrent sends.
type Conn struct {
	m      *Mailer
	client *gomail.Client
}

// Conn returns a new SMTP client.
func (m *Mailer) Conn() (*Conn, error) {
	client, err := newClient(m.cfg.SMTP)
	if err != nil {
		return nil, err
	}
	return &Conn{m: m, client: client}, nil
}

// Send makes one attempt at sending d and returns the Message-ID sent. permanent says the
// failure does not heal with time: the message cannot be built, or the server refused it for
// good (5xx).
func (c *Conn) Send(ctx context.Context, d notify.Delivery) (messageID string, permanent bool, err error) {
	messageID = notify.MessageID(d.ID, c.m.domain)
	msg, err := c.m.message(d, messageID)
	if err != nil {
		return messageID, true, fmt.Errorf("building email: %w", err)
	}
	if err := c.client.DialAndSendWithContext(ctx, msg); err != nil {
		var se *gomail.SendError
		return messageID, errors.As(err, &se) && !se.IsTemp() && se.ErrorCode() >= 500, err
	}
	return messageID, false, nil
}

func newClient(c SMTPConfig) (*gomail.Client, error) {
	if c.Host == "" || c.Port <= 0 || c.Port > 65535 {
		return nil, fmt.Errorf("sender: SMTP host and port are required, got %q:%d", c.Host, c.Port)
	}
	opts := []gomail.Option{gomail.WithPort(c.Port), gomail.WithTimeout(smtpTimeout(c))}
	switch c.TLS {
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case TLSStartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL())
	default:
		return nil, fmt.Errorf("sender: unknown TLS mode %q", c.TLS)
	}
	if c.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover), gomail.WithUsername(c.Username), gomail.WithPassword(c.Password))
	}
	client, err := gomail.NewClient(c.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("sender: configuring SMTP client: %w", err)
	}
	return client, nil
}

// smtpTimeout is the bound of connecting and of each SMTP command (default 15s).
func smtpTimeout(c SMTPConfig) time.Duration {
	if c.Timeout <= 0 {
		return 15 * time.Second
	}
	return c.Timeout
}

func (m *Mailer) message(d notify.Delivery, messageID string) (*gomail.Msg, error) {
	rendered, err := m.cfg.Renderer.Render(d.Kind, d.Data)
	if err != nil {
		return nil, err
	}
	msg := gomail.NewMsg()
	msg.FromMailAddress(m.from)
	if err := msg.To(d.To); err != nil {
		return nil, fmt.Errorf("recipient %q: %w", d.To, err)
	}
	msg.Subject(rendered.Subject)
	msg.SetMessageIDWithValue(messageID)
	msg.SetDateWithValue(d.CreatedAt)
	msg.SetGenHeader("X-Tally-Notification", string(d.Kind))
	msg.SetGenHeader("X-Auto-Response-Suppress", "All")
	msg.SetBodyString(gomail.TypeTextPlain, rendered.Text)
	msg.AddAlternativeString(gomail.TypeTextHTML, rendered.HTML)
	return msg, nil
}
