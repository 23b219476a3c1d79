// Package restfuzz is an OpenAPI-driven fuzzer for tally's REST API: it reads the committed
// Swagger 2.0 document (pkg/gen/openapi), builds a plausible request for every operation and
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
	"net/http"
	"slices"
	"strings"
)

// Spec is the part of a Swagger 2.0 document the fuzzer drives.
type Spec struct {
	// Operations, sorted by path and method.
	Operations  []Operation
	definitions map[string]*Schema
}

// Operation is one method on one path.
type Operation struct {
	ID     string
	Method string
	// Path is the template, e.g. /v1/orgs/{orgId}/balance.
	Path   string
	Params []Parameter
}

// Parameter is a path, query or body parameter.
type Parameter struct {
	Name     string   `json:"name"`
	In       string   `json:"in"`
	Type     string   `json:"type"`
	Format   string   `json:"format"`
	Required bool     `json:"required"`
	Enum     []string `json:"enum"`
	Items    *Schema  `json:"items"`
	Schema   *Schema  `json:"schema"`
}

// Schema is a JSON schema as Swagger 2.0 writes it.
type Schema struct {
	Ref        string             `json:"$ref"`
	Type       string             `json:"type"`
	Format     string             `json:"format"`
	Enum       []string           `json:"enum"`
	Properties map[string]*Schema `json:"properties"`
	Items      *Schema            `json:"items"`
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

// methods are the HTTP methods an operation may use, in Swagger's spelling.
var methods = []string{"get", "put", "post", "delete", "patch", "head", "options"}

// Parse reads a Swagger 2.0 JSON document.
func Parse(doc []byte) (*Spec, error) {
	var raw struct {
		Swagger     string                                `json:"swagger"`
		Paths       map[string]map[string]json.RawMessage `json:"paths"`
		Definitions map[string]*Schema                    `json:"definitions"`
	}
	if err := json.Unmarshal(doc, &raw); err != nil {
		return nil, fmt.Errorf("parsing the OpenAPI document: %w", err)
	}
	if raw.Swagger != "2.0" {
		return nil, fmt.Errorf("the OpenAPI document is %q, not Swagger 2.0", raw.Swagger)
	}
	s := &Spec{definitions: raw.Definitions}
	for path, item := range raw.Paths {
		for method, body := range item {
			if !slices.Contains(methods, method) {
				continue // "parameters" shared by the path item: grpc-gateway does not write them
			}
			var op struct {
				OperationID string      `json:"operationId"`
				Parameters  []Parameter `json:"parameters"`
			}
			if err := json.Unmarshal(body, &op); err != nil {
				return nil, fmt.Errorf("parsing %s %s: %w", method, path, err)
			}
			s.Operations = append(s.Operations, Operation{ID: op.OperationID, Method: strings.ToUpper(method), Path: path, Params: op.Parameters})
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

// Add appends an operation the document does not describe (the Stripe webhook route).
func (s *Spec) Add(op Operation) { s.Operations = append(s.Operations, op) }

// resolve follows a "#/definitions/..." reference.
func (s *Spec) resolve(sc *Schema) *Schema {
	for range 16 {
		if sc == nil || sc.Ref == "" {
			return sc
		}
		name, ok := strings.CutPrefix(sc.Ref, "#/definitions/")
		if !ok {
			return &Schema{}
		}
		sc = s.definitions[name]
	}
	return sc
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

func (op Operation) body() *Parameter {
	for i, p := range op.Params {
		if p.In == "body" {
			return &op.Params[i]
		}
	}
	return nil
}

// Name is how reports name op: its operationId, or method and path.
func (op Operation) Name() string {
	if op.ID != "" {
		return op.ID
	}
	return op.Method + " " + op.Path
}
