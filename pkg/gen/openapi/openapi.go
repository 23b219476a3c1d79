// Package openapi embeds the OpenAPI v2 document generated from the protos (make gen).
package openapi

import _ "embed"

// Spec is the merged OpenAPI v2 (Swagger) JSON document of every tally REST route.
//
//go:embed tally.swagger.json
var Spec []byte
