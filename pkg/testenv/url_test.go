package testenv

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWithDatabase(t *testing.T) {
	tests := []struct {
		name    string
		admin   string
		want    string
		wantErr bool
	}{
		{
			name:  "replaces database, keeps params",
			admin: "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
			want:  "postgres://postgres@127.0.0.1:5432/test_ab?sslmode=disable",
		},
		{
			name:  "adds database",
			admin: "postgresql://u:p@db:5433",
			want:  "postgresql://u:p@db:5433/test_ab",
		},
		{
			name:    "keyword DSN is rejected",
			admin:   "host=localhost user=postgres",
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := withDatabase(tt.admin, "test_ab")
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}
