package payment

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/money"
)

func TestParseLedgerCursor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, out string
		ok      bool
	}{
		// The text form itself is pkg/eventcursor's (tested there); here: a bad one is ErrInvalid.
		{"b:9,a:3", "a:3,b:9", true},
		{"42", "", false},
		{"a:1,a:2", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			c, err := ParseLedgerCursor(tt.in)
			if !tt.ok {
				require.ErrorIs(t, err, ErrInvalid)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.out, c.String())
		})
	}
}

func TestMayChange(t *testing.T) {
	t.Parallel()
	r := RuleTrigger{Currency: "USD", Threshold: 50}
	tests := []struct {
		name      string
		state     RuleState
		known     bool
		currency  string
		available int64
		want      bool
	}{
		{"unknown state below", RuleArmed, false, "USD", 10, true},
		{"unknown state above", RuleFired, false, "USD", 90, true},
		{"armed below fires", RuleArmed, true, "USD", 49, true},
		{"armed above stays", RuleArmed, true, "USD", 50, false},
		{"fired above re-arms", RuleFired, true, "USD", 50, true},
		{"fired below stays", RuleFired, true, "USD", 10, false},
		{"another currency", RuleArmed, false, "EUR", 10, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, MayChange(r, tt.state, tt.known, tt.currency, money.Nanos(tt.available)))
		})
	}
}
