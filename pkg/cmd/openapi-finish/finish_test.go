package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/tallyhq/tally/pkg/gen/openapi"
)

// gnosticDoc is a small document as protoc-gen-openapi writes it.
const gnosticDoc = `# Generated with protoc-gen-openapi
# https://github.com/google/gnostic/tree/master/cmd/protoc-gen-openapi

openapi: 3.0.3
info:
    title: tally
    description: 'The API: things.'
    version: 1.2.3
paths:
    /v1/things/{thingId}/pdf:
        get:
            tags:
                - ThingService
            description: |-
                GetThingPDF downloads a thing.
                 buf:lint:ignore RPC_RESPONSE_STANDARD_NAME
                 It is <b>binary</b> & small.
            operationId: ThingService_GetThingPDF
            responses:
                "200":
                    description: OK
                    content:
                        '*/*': {}
                default:
                    description: Default error response
                    content:
                        application/json:
                            schema:
                                $ref: '#/components/schemas/Status'
    /v1/prices:
        get:
            tags:
                - ThingService
            operationId: ThingService_ListPrices
            parameters:
                - name: pageSize
                  in: query
                  schema:
                    type: integer
                    format: int32
            responses:
                "200":
                    description: OK
                    content:
                        application/json:
                            schema:
                                $ref: '#/components/schemas/Thing'
components:
    schemas:
        GoogleProtobufAny:
            type: object
        Status:
            type: object
            properties:
                details:
                    type: array
                    items:
                        $ref: '#/components/schemas/GoogleProtobufAny'
        Thing:
            type: object
            properties:
                ratio:
                    type: number
                    default: 0.5
                enabled:
                    type: boolean
                    default: true
                nothing:
                    nullable: true
                    default: null
tags:
    - name: ThingService
      description: |-
        ThingService keeps things.
         buf:lint:ignore SERVICE_SUFFIX
         Really.
`

var testConfig = Config{
	Title:             "tally",
	ServerURL:         "http://localhost:8080",
	ServerDescription: "local",
	BearerDescription: "a JWT",
	Public:            []string{"ThingService_ListPrices"},
	Media:             map[string]string{"ThingService_GetThingPDF": "application/pdf"},
	ErrorDescription:  "an error",
}

func finishTestDoc(t *testing.T, in string, cfg Config) (map[string]any, []byte, []byte) {
	t.Helper()
	y, j, err := Finish([]byte(in), cfg)
	require.NoError(t, err)
	var fromJSON, fromYAML map[string]any
	require.NoError(t, json.Unmarshal(j, &fromJSON))
	require.NoError(t, yaml.Unmarshal(y, &fromYAML))
	// The twins say the same (through JSON, so that numbers compare alike).
	again, err := json.Marshal(fromYAML)
	require.NoError(t, err)
	var yamlAsJSON map[string]any
	require.NoError(t, json.Unmarshal(again, &yamlAsJSON))
	require.Equal(t, fromJSON, yamlAsJSON)
	return fromJSON, y, j
}

// at walks doc by keys.
func at(t *testing.T, doc any, keys ...string) any {
	t.Helper()
	for _, k := range keys {
		m, ok := doc.(map[string]any)
		require.True(t, ok, "%v is not a mapping at %q", doc, k)
		doc, ok = m[k]
		require.True(t, ok, "no %q in %v", k, keys)
	}
	return doc
}

func TestFinish(t *testing.T) {
	t.Parallel()
	doc, y, j := finishTestDoc(t, gnosticDoc, testConfig)
	pdf := []string{"paths", "/v1/things/{thingId}/pdf", "get"}
	prices := []string{"paths", "/v1/prices", "get"}
	tests := []struct {
		name string
		keys []string
		want any
	}{
		{"server", []string{"servers"}, []any{map[string]any{"url": "http://localhost:8080", "description": "local"}}},
		{"global security", []string{"security"}, []any{map[string]any{"bearerAuth": []any{}}}},
		{"bearer scheme", []string{"components", "securitySchemes", "bearerAuth"},
			map[string]any{"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "a JWT"}},
		{"public operation", append(prices, "security"), []any{}},
		{"summary from the method", append(prices, "summary"), "List prices"},
		{"summary keeps an acronym", append(pdf, "summary"), "Get thing PDF"},
		{"description without lint directives", append(pdf, "description"), "GetThingPDF downloads a thing.\nIt is <b>binary</b> & small."},
		{"tag description without lint directives", []string{"tags"}, []any{map[string]any{"name": "ThingService", "description": "ThingService keeps things.\nReally."}}},
		{"pdf media type", append(pdf, "responses", "200", "content"),
			map[string]any{"application/pdf": map[string]any{"schema": map[string]any{"type": "string", "format": "binary"}}}},
		{"client errors", append(prices, "responses", "4XX"), map[string]any{"$ref": "#/components/responses/ClientError"}},
		{"other errors", append(pdf, "responses", "default"), map[string]any{"$ref": "#/components/responses/Error"}},
		{"error body", []string{"components", "responses", "Error", "content", "application/json", "schema"},
			map[string]any{"$ref": "#/components/schemas/Error"}},
		{"error schema", []string{"components", "schemas", "Error", "required"}, []any{"code", "message", "details"}},
		{"string codes", []string{"components", "schemas", "Error", "properties", "code", "type"}, "string"},
		{"code names", []string{"components", "schemas", "Error", "properties", "code", "enum"}, []any{"CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"}},
		{"numbers", []string{"components", "schemas", "Thing", "properties", "ratio", "default"}, 0.5},
		{"booleans", []string{"components", "schemas", "Thing", "properties", "enabled", "default"}, true},
		{"nulls", []string{"components", "schemas", "Thing", "properties", "nothing", "default"}, nil},
		{"version kept", []string{"info", "version"}, "1.2.3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, at(t, doc, tt.keys...))
		})
	}
	require.NotContains(t, at(t, doc, pdf...), "security", "protected operations use the global security")
	schemas := at(t, doc, "components", "schemas").(map[string]any)
	require.NotContains(t, schemas, "Status", "google.rpc.Status is no longer used")
	require.NotContains(t, schemas, "GoogleProtobufAny", "nor what only it used")

	require.True(t, strings.HasPrefix(string(y), "# "+header+"\n"), "%s", y[:120])
	require.NotContains(t, string(y), "Generated with protoc-gen-openapi")
	var keys []string
	for _, line := range strings.Split(string(y), "\n") {
		if k, _, ok := strings.Cut(line, ":"); ok && k != "" && !strings.HasPrefix(k, " ") && !strings.HasPrefix(k, "#") {
			keys = append(keys, k)
		}
	}
	require.Equal(t, topLevelOrder, keys)
	require.Contains(t, string(j), `"description": "GetThingPDF downloads a thing.\nIt is <b>binary</b> & small."`, "no HTML escapes in JSON")

	y2, j2, err := Finish(y, testConfig)
	require.NoError(t, err)
	require.Equal(t, string(y), string(y2), "finishing a finished document changes nothing")
	require.Equal(t, string(j), string(j2))
}

func TestFinishRefuses(t *testing.T) {
	t.Parallel()
	withConfig := func(f func(*Config)) Config {
		c := testConfig
		c.Media = map[string]string{"ThingService_GetThingPDF": "application/pdf"}
		f(&c)
		return c
	}
	tests := []struct {
		name string
		doc  string
		cfg  Config
		want string
	}{
		{"openapi 3.1", strings.Replace(gnosticDoc, "openapi: 3.0.3", "openapi: 3.1.0", 1), testConfig, `OpenAPI "3.1.0", want 3.0.x`},
		{"swagger", `{"swagger": "2.0", "info": {"title": "tally"}}`, testConfig, `OpenAPI "", want 3.0.x`},
		{"another title", gnosticDoc, withConfig(func(c *Config) { c.Title = "other" }), `title is "tally", want "other"`},
		{"no version", strings.Replace(gnosticDoc, "version: 1.2.3", "version: ''", 1), testConfig, "no version"},
		{"a public operation that is gone", gnosticDoc, withConfig(func(c *Config) { c.Public = append(c.Public, "ThingService_Gone") }),
			"public operation ThingService_Gone is not in the document"},
		{"a google.api.HttpBody without a media type", gnosticDoc, withConfig(func(c *Config) { c.Media = nil }),
			"give ThingService_GetThingPDF a media type"},
		{"a media type for no HttpBody", gnosticDoc, withConfig(func(c *Config) { c.Media["ThingService_ListPrices"] = "text/csv" }),
			"ThingService_ListPrices with a media type"},
		{"no operationId", strings.Replace(gnosticDoc, "operationId: ThingService_ListPrices", "x-id: 1", 1), testConfig,
			"get /v1/prices has no operationId"},
		{"a service whose package is not linked", gnosticDoc, withConfig(func(c *Config) { c.Files = protoregistry.GlobalFiles }),
			"no proto service ThingService is linked into openapi-finish"},
		{"not yaml", "{", testConfig, "parsing the YAML document"},
		{"a list", "- a\n", testConfig, "not a YAML mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := Finish([]byte(tt.doc), tt.cfg)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestSummaryOf(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"PaymentsService_CreateCheckoutSession": "Create checkout session",
		"LedgerService_GetBalance":              "Get balance",
		"PaymentsService_GetInvoicePDF":         "Get invoice PDF",
		"X_HTTPStatusOK":                        "HTTP status OK",
		"NoService":                             "No service",
		"Svc_Quote":                             "Quote",
	}
	for id, want := range tests {
		t.Run(id, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, want, summaryOf(id))
		})
	}
}

// TestCommittedDocumentIsFinished: the committed document is this command's output, and finishing
// it again changes nothing (so `make gen` is stable whatever ran before).
func TestCommittedDocumentIsFinished(t *testing.T) {
	t.Parallel()
	y, j, err := Finish(openapi.SpecYAML, Tally)
	require.NoError(t, err)
	require.Equal(t, string(openapi.SpecYAML), string(y))
	require.Equal(t, string(openapi.Spec), string(j))

	var doc map[string]any
	require.NoError(t, json.Unmarshal(openapi.Spec, &doc))
	schemas := []string{"components", "schemas"}
	tests := []struct {
		keys []string
		want any
	}{
		{[]string{"Money", "properties", "units"}, map[string]any{"type": "string", "format": "int64", "description": "The whole units of the amount.\nFor example if `currencyCode` is `\"USD\"`, then 1 unit is one US dollar."}},
		{[]string{"Money", "properties", "nanos", "format"}, "int32"},
		{[]string{"ModelPrice", "properties", "catalogVersion", "format"}, "int64"},
		{[]string{"QuoteRequest", "properties", "usage", "additionalProperties"}, map[string]any{"type": "string"}},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, at(t, doc, append(schemas, tt.keys...)...), "%v", tt.keys)
	}
}

func TestRun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := filepath.Join(dir, "openapi.yaml")
	out := filepath.Join(dir, "openapi.json")
	require.NoError(t, os.WriteFile(in, []byte(gnosticDoc), 0o644))
	var stderr bytes.Buffer
	err := run([]string{"-yaml", in, "-json", out}, &stderr)
	require.ErrorContains(t, err, "give ThingService_GetThingPDF a media type", "run uses tally's configuration")

	require.NoError(t, os.WriteFile(in, openapi.SpecYAML, 0o644))
	require.NoError(t, run([]string{"-yaml", in, "-json", out}, &stderr))
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, string(openapi.Spec), string(got))

	require.ErrorContains(t, run([]string{"-yaml", filepath.Join(dir, "missing.yaml")}, &stderr), "reading the document")
	require.ErrorContains(t, run([]string{"extra"}, &stderr), "unexpected arguments")
}
