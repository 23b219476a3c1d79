// Package openapi embeds the OpenAPI 3 document of tally's REST API, generated from the protos by
// gnostic's protoc-gen-openapi and finished by pkg/cmd/openapi-finish (make gen).
package openapi

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Spec is the OpenAPI 3 document as JSON (openapi.json), served by the gateway at /openapi.json.
//
//go:embed openapi.json
var Spec []byte

// SpecYAML is the same document as YAML (openapi.yaml), served at /openapi.yaml.
//
//go:embed openapi.yaml
var SpecYAML []byte

// Operation is one route of the document.
type Operation struct {
	// ID is the operationId, "<Service>_<Method>" (e.g. "PricingService_Quote").
	ID string
	// Method is upper case; Path is the template, e.g. /v1/orgs/{orgId}/balance.
	Method, Path string
	// Public reports an operation that needs no token (`security: []`).
	Public bool
}

// Operations lists the document's operations, sorted by ID.
func Operations() ([]Operation, error) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(Spec, &doc); err != nil {
		return nil, fmt.Errorf("parsing the OpenAPI document: %w", err)
	}
	var ops []Operation
	for path, item := range doc.Paths {
		for method, raw := range item {
			if !slices.Contains([]string{"get", "put", "post", "delete", "patch", "head", "options", "trace"}, method) {
				continue
			}
			var op struct {
				OperationID string             `json:"operationId"`
				Security    *[]json.RawMessage `json:"security"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				return nil, fmt.Errorf("parsing %s %s: %w", method, path, err)
			}
			ops = append(ops, Operation{
				ID: op.OperationID, Method: strings.ToUpper(method), Path: path,
				Public: op.Security != nil && len(*op.Security) == 0,
			})
		}
	}
	slices.SortFunc(ops, func(a, b Operation) int { return strings.Compare(a.ID, b.ID) })
	return ops, nil
}

// CheckPolicy compares the document's operations of the gRPC service (its full name, e.g.
// "tally.pricing.v1.PricingService") with the service's auth policy: rule reports whether the
// policy lists fullMethod and whether it admits callers without a token. It fails when the
// document has no operation of the service, when an operation's method is not in the policy, and
// when an operation is public (`security: []`) in one but not in the other.
func CheckPolicy(service string, rule func(fullMethod string) (listed, public bool)) error {
	ops, err := Operations()
	if err != nil {
		return err
	}
	short := service[strings.LastIndex(service, ".")+1:]
	var errs []error
	found := 0
	for _, op := range ops {
		method, ok := strings.CutPrefix(op.ID, short+"_")
		if !ok {
			continue
		}
		found++
		fullMethod := "/" + service + "/" + method
		listed, public := rule(fullMethod)
		switch {
		case !listed:
			errs = append(errs, fmt.Errorf("%s (%s %s) is not in the policy", fullMethod, op.Method, op.Path))
		case public && !op.Public:
			errs = append(errs, fmt.Errorf("%s is public, but the document asks %s %s for a bearer token: add %s to openapi-finish's Config.Public", fullMethod, op.Method, op.Path, op.ID))
		case !public && op.Public:
			errs = append(errs, fmt.Errorf("%s needs a token, but the document marks %s %s public: remove %s from openapi-finish's Config.Public", fullMethod, op.Method, op.Path, op.ID))
		}
	}
	if found == 0 {
		errs = append(errs, fmt.Errorf("the document has no operation of %s", service))
	}
	return errors.Join(errs...)
}
