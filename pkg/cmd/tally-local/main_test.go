package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/testenv"
)

func TestRun(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantErr  string
		wantLine string
	}{
		{name: "no command", wantErr: "usage"},
		{name: "unknown server", args: []string{"mysql", "--dir", "x"}, wantErr: `unknown server "mysql"`},
		{name: "missing dir", args: []string{"redis"}, wantErr: "--dir is required"},
		{name: "durable is postgres only", args: []string{"redis", "--dir", "x", "--durable"}, wantErr: "flag provided but not defined"},
		{name: "redis", args: []string{"redis", "--dir", "DIR"}, wantLine: "REDIS_URL=redis://127.0.0.1:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			args := make([]string, len(tt.args))
			for i, a := range tt.args {
				args[i] = strings.ReplaceAll(a, "DIR", dir)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			var out testenv.Buffer
			errc := make(chan error, 1)
			go func() { errc <- run(ctx, args, &out, slog.New(slog.DiscardHandler)) }()
			if tt.wantErr != "" {
				require.ErrorContains(t, <-errc, tt.wantErr)
				return
			}
			require.Eventually(t, func() bool { return strings.HasPrefix(out.String(), tt.wantLine) }, 20*time.Second, 20*time.Millisecond)
			cancel()
			require.NoError(t, <-errc)
		})
	}
}
