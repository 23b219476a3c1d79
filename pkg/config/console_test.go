package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestConsoleURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want string
		bad  bool
	}{
		{name: "default", env: map[string]string{}, want: "http://localhost:8080"},
		{name: "https with path", env: map[string]string{"TALLY_CONSOLE_URL": "https://console.tally.dev/app/"}, want: "https://console.tally.dev/app"},
		{name: "http loopback in production", env: map[string]string{"TALLY_CONSOLE_URL": "http://127.0.0.1:5173"}, want: "http://127.0.0.1:5173"},
		{name: "http elsewhere in development", env: map[string]string{"TALLY_ENV": "development", "TALLY_CONSOLE_URL": "http://dev.box:8080"}, want: "http://dev.box:8080"},
		{name: "http elsewhere in production", env: map[string]string{"TALLY_CONSOLE_URL": "http://console.tally.dev"}, bad: true},
		{name: "relative", env: map[string]string{"TALLY_CONSOLE_URL": "/billing"}, bad: true},
		{name: "no scheme", env: map[string]string{"TALLY_CONSOLE_URL": "localhost:8080"}, bad: true},
		{name: "javascript", env: map[string]string{"TALLY_CONSOLE_URL": "javascript:alert(1)"}, bad: true},
		{name: "query", env: map[string]string{"TALLY_CONSOLE_URL": "https://console.tally.dev/?x=1"}, bad: true},
		{name: "user info", env: map[string]string{"TALLY_CONSOLE_URL": "https://a:b@console.tally.dev"}, bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := FromMap(tt.env)
			got := e.ConsoleURL()
			if tt.bad {
				require.Error(t, e.Err())
				require.Contains(t, e.Err().Error(), "TALLY_CONSOLE_URL")
				return
			}
			require.NoError(t, e.Err())
			require.Equal(t, tt.want, got)
		})
	}
}
