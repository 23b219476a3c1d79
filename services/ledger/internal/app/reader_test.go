package app

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBatchReaderReadsEachOrganizationOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		orgs    []string
		fetched []string
		err     error
	}{
		{"one call", []string{"a"}, []string{"a"}, nil},
		{"distinct", []string{"a", "b", "c"}, []string{"a", "b", "c"}, nil},
		{"hot organization", []string{"a", "a", "b", "a", "b"}, []string{"a", "b"}, nil},
		{"failed read answers every call", []string{"a", "a", "b"}, []string{"a", "b"}, errors.New("down")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var fetched []string
			r := newBatchReader(len(tt.orgs), 1, func(_ context.Context, orgs []string) ([]string, error) {
				fetched = append(fetched, orgs...)
				if tt.err != nil {
					return nil, tt.err
				}
				vals := make([]string, len(orgs))
				for i, o := range orgs {
					vals[i] = "value of " + o
				}
				return vals, nil
			})
			batch := make([]batchRead[string], len(tt.orgs))
			for i, o := range tt.orgs {
				batch[i] = batchRead[string]{ctx: t.Context(), org: o, reply: make(chan batchReply[string], 1)}
			}
			r.serve(batch)
			require.Equal(t, tt.fetched, fetched)
			for i, b := range batch {
				rep := <-b.reply
				if tt.err != nil {
					require.ErrorIs(t, rep.err, tt.err)
					continue
				}
				require.NoError(t, rep.err)
				require.Equal(t, "value of "+tt.orgs[i], rep.val)
			}
		})
	}
}
