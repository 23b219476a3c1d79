package store

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestEncodeMetadata requires the metadata column json.Marshal wrote before its fast path: "{}"
// for none (nil or empty), the same JSON, keys sorted and escaped, otherwise.
func TestEncodeMetadata(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		in   map[string]string
		want string
	}{
		{"nil", nil, "{}"},
		{"empty", map[string]string{}, "{}"},
		{"one", map[string]string{"model": "llama"}, `{"model":"llama"}`},
		{"sorted and escaped", map[string]string{"z": "<\"q\">", "a": "é\n"}, `{"a":"é\n","z":"\u003c\"q\"\u003e"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := encodeMetadata(tc.in)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			if len(tc.in) > 0 {
				marshaled, err := json.Marshal(tc.in)
				require.NoError(t, err)
				require.Equal(t, string(marshaled), got)
			}
		})
	}
}
