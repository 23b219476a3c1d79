package restfuzz

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

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
		for _, p := range op.Params {
			require.NotNil(t, spec.resolve(p.Schema), "%s: parameter %s has a schema", op.ID, p.Name)
		}
		if op.Body != nil {
			body := spec.resolve(op.Body)
			require.NotNil(t, body, "%s: the body schema resolves", op.ID)
			require.NotEmpty(t, body.Properties, "%s: the body schema has properties", op.ID)
			for name, p := range body.Properties {
				p = spec.resolve(p)
				require.NotNil(t, p, "%s: property %s resolves", op.ID, name)
				require.NotEmpty(t, p.Type, "%s: property %s has a type once resolved", op.ID, name)
			}
		}
	}
	require.True(t, slices.ContainsFunc(spec.Operations, func(op Operation) bool { return op.Body != nil }), "some operations take a body")
	require.True(t, slices.ContainsFunc(spec.Operations, func(op Operation) bool { return len(op.query()) > 0 }), "some operations take query parameters")
}

func TestParseRefusesOtherDocuments(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, doc, want string
	}{
		{"swagger 2", `{"swagger":"2.0","paths":{"/a":{"get":{}}}}`, "not OpenAPI 3.0"},
		{"openapi 3.1", `{"openapi":"3.1.0","paths":{"/a":{"get":{}}}}`, "not OpenAPI 3.0"},
		{"no operations", `{"openapi":"3.0.3","paths":{}}`, "no operations"},
		{"not json", `openapi: 3.0.3`, "parsing the OpenAPI document"},
		{"swagger body parameter", `{"openapi":"3.0.3","paths":{"/a":{"post":{"parameters":[{"name":"body","in":"body"}]}}}}`, `is in "body"`},
		{"body without json", `{"openapi":"3.0.3","paths":{"/a":{"post":{"requestBody":{"content":{"text/plain":{"schema":{"type":"string"}}}}}}}}`, "no application/json schema"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tt.doc))
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestParseReadsOpenAPI3(t *testing.T) {
	t.Parallel()
	doc := `{"openapi":"3.0.3","paths":{"/v1/orgs/{orgId}/things":{
		"parameters":[{"name":"orgId","in":"path","required":true,"schema":{"type":"string"}}],
		"post":{"operationId":"Things_Create",
			"parameters":[{"name":"dryRun","in":"query","schema":{"type":"boolean"}}],
			"requestBody":{"required":true,"content":{"application/json":{"schema":{"$ref":"#/components/schemas/Thing"}}}}},
		"get":{"operationId":"Things_List","parameters":[{"name":"kind","in":"query","schema":{"$ref":"#/components/schemas/Kind"}}]}}},
		"components":{"schemas":{
			"Thing":{"type":"object","properties":{"name":{"type":"string"},"kind":{"$ref":"#/components/schemas/Kind"},
				"size":{"allOf":[{"$ref":"#/components/schemas/Size"}],"description":"described"}}},
			"Size":{"type":"object","properties":{"units":{"type":"string","format":"int64"}}},
			"Kind":{"type":"string","enum":["KIND_A","KIND_B"]}}}}`
	spec, err := Parse([]byte(doc))
	require.NoError(t, err)
	require.Len(t, spec.Operations, 2)
	get, post := spec.Operations[0], spec.Operations[1]
	require.Equal(t, "GET", get.Method)
	require.Nil(t, get.Body)
	require.Equal(t, []string{"orgId"}, names(get.pathParams()), "the path item's parameters apply to every operation")
	require.Equal(t, []string{"KIND_A", "KIND_B"}, spec.resolve(get.query()[0].Schema).Enum)
	require.Equal(t, "POST", post.Method)
	require.Equal(t, []string{"dryRun"}, names(post.query()))
	body := spec.resolve(post.Body)
	require.Contains(t, body.Properties, "name")
	require.Equal(t, "string", spec.resolve(body.Properties["kind"]).Type)

	g := newGenerator(spec, Hints{}, 3, 0, testNow)
	r := g.build(post)
	require.True(t, r.hasBody)
	require.Contains(t, r.target(), "/v1/orgs/")
	obj, ok := r.tree.(map[string]any)
	require.True(t, ok, "%#v", r.tree)
	if k, ok := obj["kind"]; ok {
		require.Contains(t, []any{"KIND_A", "KIND_B"}, k)
	}
	require.Equal(t, "object", spec.resolve(body.Properties["size"]).Type, "allOf is merged")
	require.Contains(t, spec.resolve(body.Properties["size"]).Properties, "units")
	q := g.paramValue(get.query()[0])
	require.Contains(t, []string{"KIND_A", "KIND_B"}, q, "query enums come from the referenced schema")
}

func names(ps []Parameter) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return out
}

// TestRequestsAreReproducible: request i of a seed is the same on every run, whatever ran before.
func TestRequestsAreReproducible(t *testing.T) {
	t.Parallel()
	spec := committedSpec(t)
	build := func(i int) string {
		g := newGenerator(spec, Hints{}, 42, i, testNow)
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
				g := newGenerator(spec, Hints{}, 7, i, testNow)
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
	g := newGenerator(spec, Hints{Values: map[string][]any{"currencyCode": {"USD"}}}, 1, 0, testNow)
	money := g.value("amount", &Schema{Ref: "#/components/schemas/Money"}, 0)
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

// testNow is the start of the generator tests' runs.
var testNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
