// Package restfuzz is an OpenAPI-driven fuzzer for tally's REST API: it reads the committed
// OpenAPI 3 document (pkg/gen/openapi), builds a plausible request for every operation and
// sends thousands of mutated ones — path and query parameters, bodies of the wrong type, huge
// and negative numbers, NUL, invalid UTF-8, bidi and control characters, deep nesting, missing
// and extra fields, wrong methods and content types — as several callers, recording every answer.
// A run is reproducible from its seed. Its test (restfuzz_test.go) runs it against the real
// stack and fails on any 5xx, unclean error body, panic in a log or unhealthy service.
package restfuzz

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
)

// Spec is the part of an OpenAPI 3.0 document the fuzzer drives.
type Spec struct {
	// Operations, sorted by path and method.
	Operations []Operation
	// schemas are the document's components/schemas.
	schemas map[string]*Schema
}

// Operation is one method on one path.
type Operation struct {
	ID     string
	Method string
	// Path is the template, e.g. /v1/orgs/{orgId}/balance.
	Path string
	// Params are the path and query parameters.
	Params []Parameter
	// Body is the schema of the application/json request body, nil when the operation takes none.
	Body *Schema
}

// Parameter is a path or query parameter (header and cookie ones are parsed, not fuzzed).
type Parameter struct {
	Name     string  `json:"name"`
	In       string  `json:"in"`
	Required bool    `json:"required"`
	Schema   *Schema `json:"schema"`
}

// Schema is a JSON schema as OpenAPI 3.0 writes it.
type Schema struct {
	Ref        string             `json:"$ref"`
	Type       string             `json:"type"`
	Format     string             `json:"format"`
	Enum       []string           `json:"enum"`
	Properties map[string]*Schema `json:"properties"`
	Items      *Schema            `json:"items"`
	// AllOf are schemas the value satisfies together (gnostic wraps a described reference in one).
	AllOf []*Schema `json:"allOf"`
	// AdditionalProperties is the schema of a map's values (nil when not a map).
	AdditionalProperties *Schema `json:"-"`
	ReadOnly             bool    `json:"readOnly"`
	// Examples are plausible values, preferred by the generator (for hand-written schemas).
	Examples []any `json:"-"`
}

// UnmarshalJSON reads additionalProperties, which may be a schema or a boolean.
func (s *Schema) UnmarshalJSON(b []byte) error {
	type plain Schema
	var raw struct {
		plain
		AdditionalProperties json.RawMessage `json:"additionalProperties"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*s = Schema(raw.plain)
	if len(raw.AdditionalProperties) > 0 && raw.AdditionalProperties[0] == '{' {
		s.AdditionalProperties = &Schema{}
		if err := json.Unmarshal(raw.AdditionalProperties, s.AdditionalProperties); err != nil {
			return fmt.Errorf("additionalProperties: %w", err)
		}
	}
	return nil
}

// methods are the HTTP methods an operation may use, in OpenAPI's spelling.
var methods = []string{"get", "put", "post", "delete", "patch", "head", "options", "trace"}

// schemaPrefix starts every reference to a schema of the document.
const schemaPrefix = "#/components/schemas/"

// Parse reads an OpenAPI 3.0 JSON document.
func Parse(doc []byte) (*Spec, error) {
	var raw struct {
		OpenAPI    string                                `json:"openapi"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]*Schema `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(doc, &raw); err != nil {
		return nil, fmt.Errorf("parsing the OpenAPI document: %w", err)
	}
	if !strings.HasPrefix(raw.OpenAPI, "3.0.") {
		return nil, fmt.Errorf("the OpenAPI document is %q, not OpenAPI 3.0", raw.OpenAPI)
	}
	s := &Spec{schemas: raw.Components.Schemas}
	for path, item := range raw.Paths {
		var shared []Parameter // parameters of the path item, for all its operations
		if b, ok := item["parameters"]; ok {
			if err := json.Unmarshal(b, &shared); err != nil {
				return nil, fmt.Errorf("parsing the parameters of %s: %w", path, err)
			}
		}
		for method, body := range item {
			if !slices.Contains(methods, method) {
				continue
			}
			op, err := parseOperation(method, path, body, shared)
			if err != nil {
				return nil, err
			}
			s.Operations = append(s.Operations, op)
		}
	}
	if len(s.Operations) == 0 {
		return nil, errors.New("the OpenAPI document has no operations")
	}
	slices.SortFunc(s.Operations, func(a, b Operation) int {
		return strings.Compare(a.Path+" "+a.Method, b.Path+" "+b.Method)
	})
	return s, nil
}

func parseOperation(method, path string, body json.RawMessage, shared []Parameter) (Operation, error) {
	var op struct {
		OperationID string      `json:"operationId"`
		Parameters  []Parameter `json:"parameters"`
		RequestBody *struct {
			Ref     string `json:"$ref"`
			Content map[string]struct {
				Schema *Schema `json:"schema"`
			} `json:"content"`
		} `json:"requestBody"`
	}
	if err := json.Unmarshal(body, &op); err != nil {
		return Operation{}, fmt.Errorf("parsing %s %s: %w", method, path, err)
	}
	params := slices.Clone(op.Parameters)
	for _, p := range shared {
		overridden := slices.ContainsFunc(params, func(q Parameter) bool { return q.Name == p.Name && q.In == p.In })
		if !overridden {
			params = append(params, p)
		}
	}
	for _, p := range params {
		if p.In != "path" && p.In != "query" && p.In != "header" && p.In != "cookie" {
			return Operation{}, fmt.Errorf("%s %s: parameter %q is in %q", method, path, p.Name, p.In)
		}
	}
	out := Operation{ID: op.OperationID, Method: strings.ToUpper(method), Path: path, Params: params}
	if rb := op.RequestBody; rb != nil {
		if rb.Ref != "" {
			return Operation{}, fmt.Errorf("%s %s: request bodies by reference (%s) are not supported", method, path, rb.Ref)
		}
		mt, ok := rb.Content["application/json"]
		if !ok || mt.Schema == nil {
			return Operation{}, fmt.Errorf("%s %s: the request body has no application/json schema", method, path)
		}
		out.Body = mt.Schema
	}
	return out, nil
}

// Add appends an operation the document does not describe (the Stripe webhook route).
func (s *Spec) Add(op Operation) { s.Operations = append(s.Operations, op) }

// resolve follows a "#/components/schemas/..." reference and merges allOf into one schema.
func (s *Spec) resolve(sc *Schema) *Schema {
	return s.resolveDepth(sc, 0)
}

func (s *Spec) resolveDepth(sc *Schema, depth int) *Schema {
	for range 16 {
		if sc == nil || sc.Ref == "" {
			break
		}
		name, ok := strings.CutPrefix(sc.Ref, schemaPrefix)
		if !ok {
			return &Schema{}
		}
		sc = s.schemas[name]
	}
	if sc == nil || sc.Ref != "" {
		return sc
	}
	if len(sc.AllOf) == 0 || depth > 8 {
		return sc
	}
	merged := *sc
	merged.AllOf = nil
	merged.Properties = maps.Clone(sc.Properties)
	for _, part := range sc.AllOf {
		p := s.resolveDepth(part, depth+1)
		if p == nil {
			continue
		}
		if merged.Type == "" {
			merged.Type = p.Type
		}
		if merged.Format == "" {
			merged.Format = p.Format
		}
		if len(merged.Enum) == 0 {
			merged.Enum = p.Enum
		}
		if merged.Items == nil {
			merged.Items = p.Items
		}
		if merged.AdditionalProperties == nil {
			merged.AdditionalProperties = p.AdditionalProperties
		}
		merged.ReadOnly = merged.ReadOnly || p.ReadOnly
		for k, v := range p.Properties {
			if merged.Properties == nil {
				merged.Properties = map[string]*Schema{}
			}
			if _, ok := merged.Properties[k]; !ok {
				merged.Properties[k] = v
			}
		}
	}
	return &merged
}

// methodsOf lists the methods the document gives path.
func (s *Spec) methodsOf(path string) []string {
	var out []string
	for _, op := range s.Operations {
		if op.Path == path {
			out = append(out, op.Method)
		}
	}
	return out
}

// otherMethods are the methods tried on a path that does not take them.
var otherMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions, "PROPFIND"}

// pathParams returns the path parameters of op in template order.
func (op Operation) pathParams() []Parameter {
	var out []Parameter
	for _, p := range op.Params {
		if p.In == "path" {
			out = append(out, p)
		}
	}
	return out
}

func (op Operation) query() []Parameter {
	var out []Parameter
	for _, p := range op.Params {
		if p.In == "query" {
			out = append(out, p)
		}
	}
	return out
}

// Name is how reports name op: its operationId, or method and path.
func (op Operation) Name() string {
	if op.ID != "" {
		return op.ID
	}
	return op.Method + " " + op.Path
}
