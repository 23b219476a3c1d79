package test

import (
	"context"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/localstack"
)

// ownMailpit is a private mailpit that a test stops and restarts on the same ports, to play an
// SMTP outage (the shared one of testenv serves the other tests).
type ownMailpit struct {
	cfg localstack.MailpitConfig
	mp  *localstack.Mailpit
}

func startOwnMailpit(t *testing.T) *ownMailpit {
	t.Helper()
	smtpPort, err := localstack.FreePort()
	require.NoError(t, err)
	httpPort, err := localstack.FreePort()
	require.NoError(t, err)
	o := &ownMailpit{cfg: localstack.MailpitConfig{
		Bin: filepath.Join(localstack.BinDir(), "mailpit"), SMTPPort: smtpPort, HTTPPort: httpPort, Dir: t.TempDir(),
	}}
	o.restart(t)
	t.Cleanup(func() { o.stop(t) })
	return o
}

func (o *ownMailpit) restart(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	mp, err := localstack.StartMailpit(ctx, o.cfg)
	require.NoError(t, err)
	o.mp = mp
}

func (o *ownMailpit) stop(t *testing.T) {
	t.Helper()
	if o.mp == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, o.mp.Stop(ctx))
	o.mp = nil
}

func (o *ownMailpit) SMTPAddr() string { return "127.0.0.1:" + strconv.Itoa(o.cfg.SMTPPort) }
func (o *ownMailpit) HTTPURL() string  { return "http://127.0.0.1:" + strconv.Itoa(o.cfg.HTTPPort) }

// rejectingMailpit is a mailpit that refuses every recipient but allowed with a permanent
// (5xx) error.
type rejectingMailpit struct {
	smtpPort, httpPort int
}

func startRejectingMailpit(t *testing.T, allowed string) *rejectingMailpit {
	t.Helper()
	smtpPort, err := localstack.FreePort()
	require.NoError(t, err)
	httpPort, err := localstack.FreePort()
	require.NoError(t, err)
	r := &rejectingMailpit{smtpPort: smtpPort, httpPort: httpPort}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	proc, err := localstack.StartProcess(ctx, localstack.ProcessConfig{
		Name: "mailpit-rejecting",
		Path: filepath.Join(localstack.BinDir(), "mailpit"),
		Args: []string{"--smtp", r.SMTPAddr(), "--listen", "127.0.0.1:" + strconv.Itoa(httpPort), "--smtp-auth-accept-any",
			"--smtp-auth-allow-insecure", "--smtp-allowed-recipients", "^" + regexp.QuoteMeta(allowed) + "$"},
		ReadyAddr: r.SMTPAddr(),
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		require.NoError(t, proc.Stop(ctx))
	})
	return r
}

func (r *rejectingMailpit) SMTPAddr() string { return "127.0.0.1:" + strconv.Itoa(r.smtpPort) }
func (r *rejectingMailpit) HTTPURL() string  { return "http://127.0.0.1:" + strconv.Itoa(r.httpPort) }
