package eventcursor_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/eventcursor"
)

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want eventcursor.Cursor
		text string
		bad  bool
	}{
		{in: "", want: eventcursor.Cursor{}, text: ""},
		{in: "main:42", want: eventcursor.Cursor{"main": 42}, text: "main:42"},
		{in: "b:9,a:3", want: eventcursor.Cursor{"a": 3, "b": 9}, text: "a:3,b:9"},
		{in: "a:0", want: eventcursor.Cursor{"a": 0}, text: "a:0"},
		{in: "42", bad: true},
		{in: ":3", bad: true},
		{in: "a:-1", bad: true},
		{in: "a:x", bad: true},
		{in: "a:1,a:2", bad: true},
		{in: "a:1,", bad: true},
		{in: "a:99999999999999999999", bad: true},
	} {
		got, err := eventcursor.Parse(tc.in)
		if tc.bad {
			require.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
		require.Equal(t, tc.text, got.String(), tc.in)
	}
}
