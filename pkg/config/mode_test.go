package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    Mode
		wantErr bool
	}{
		{name: "unset is production", env: map[string]string{}, want: Production},
		{name: "production", env: map[string]string{ModeKey: "production"}, want: Production},
		{name: "development", env: map[string]string{ModeKey: "development"}, want: Development},
		{name: "case matters", env: map[string]string{ModeKey: "Development"}, want: Production, wantErr: true},
		{name: "unknown", env: map[string]string{ModeKey: "dev"}, want: Production, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := FromMap(tc.env)
			require.Equal(t, tc.want, e.Mode())
			require.Equal(t, tc.want == Development, e.Development())
			if tc.wantErr {
				require.Error(t, e.Err())
			} else {
				require.NoError(t, e.Err())
			}
		})
	}
}
