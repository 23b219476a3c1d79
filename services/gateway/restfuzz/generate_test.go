package restfuzz

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/gen/openapi"
)

func committedSpec(t *testing.T) *Spec {
	t.Helper()
	spec, err := Parse(openapi.Spec)
	require.NoError(t, err)
	return spec
}

func TestParseCommittedDocument(t *testing.T) {
	t.Parallel()
	spec := committedSpec(t)
	require.Greater(t, len(spec.Operations), 20)
	for _, op := range spec.Operations {
		require.NotEmpty(t, op.ID, "%s %s", op.Method, op.Path)
		for _, p := range op.pathParams() {
			require.Contains(t, op.Path, "{"+p.Name+"}", "%s: path parameters name the template's", op.ID)
		}
		if b := op.body(); b != nil {
			require.NotNil(t, spec.resolve(b.Schema), "%s: the body schema resolves", op.ID)
		}
	}
	_, err := Parse([]byte(`{"openapi":"3.0.0","paths":{}}`))
	require.ErrorContains(t, err, "not Swagger 2.0")
}

// TestRequestsAreReproducible: request i of a seed is the same on every run, whatever ran before.
func TestRequestsAreReproducible(t *testing.T) {
	t.Parallel()
	spec := committedSpec(t)
	build := func(i int) string {
		g := newGenerator(spec, Hints{}, 42, i)
		r := g.build(spec.Operations[i%len(spec.Operations)])
		g.mutate(r, 2)
		body, err := r.encodeBody()
		require.NoError(t, err)
		return r.method + " " + r.target() + " " + string(body) + " " + strings.Join(r.mutations, ",")
	}
	for i := range 200 {
		require.Equal(t, build(i), build(i))
	}
	require.NotEqual(t, build(0), build(len(spec.Operations)), "another request of the same operation differs")
}

// TestEveryMutatorBuildsARequest applies each mutator many times to each operation it fits: the
// result always encodes into a request the HTTP client can send.
func TestEveryMutatorBuildsARequest(t *testing.T) {
	t.Parallel()
	spec := committedSpec(t)
	for _, m := range mutators {
		t.Run(m.kind, func(t *testing.T) {
			applied := 0
			for i := range 4 * len(spec.Operations) {
				g := newGenerator(spec, Hints{}, 7, i)
				r := g.build(spec.Operations[i%len(spec.Operations)])
				if !m.applies(r) {
					continue
				}
				m.apply(g, r)
				applied++
				body, err := r.encodeBody()
				require.NoError(t, err)
				_, err = url.ParseRequestURI("http://gateway" + r.target())
				require.NoError(t, err, "target %q", r.target())
				if r.hasBody && r.body == nil && !strings.Contains(m.kind, "deep") && !strings.Contains(m.kind, "number") &&
					!strings.Contains(m.kind, "string") && r.duplicateKey == "" {
					require.True(t, json.Valid(body), "%s: %s", m.kind, body)
				}
			}
			require.Positive(t, applied, "the mutator fits some operation")
		})
	}
}

func TestValuesFollowTheSchema(t *testing.T) {
	t.Parallel()
	spec := committedSpec(t)
	g := newGenerator(spec, Hints{Values: map[string][]any{"currencyCode": {"USD"}}}, 1, 0)
	money := g.value("amount", &Schema{Ref: "#/definitions/typeMoney"}, 0)
	obj, ok := money.(map[string]any)
	require.True(t, ok, "%#v", money)
	if c, ok := obj["currencyCode"]; ok {
		require.Equal(t, "USD", c, "hints win")
	}
	if u, ok := obj["units"]; ok {
		require.IsType(t, "", u, "int64 fields are JSON strings")
	}
	if n, ok := obj["nanos"]; ok {
		require.IsType(t, 0, n, "int32 fields are JSON numbers")
	}
	key := g.value("idempotencyKey", &Schema{Type: "string"}, 0)
	require.NotEqual(t, key, g.value("idempotencyKey", &Schema{Type: "string"}, 0), "idempotency keys are fresh")
}
