package main

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	// The generated packages register the protos' descriptors, which say which fields are 64-bit.
	_ "github.com/tallyhq/tally/pkg/gen/tally/instances/v1"
	_ "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	_ "github.com/tallyhq/tally/pkg/gen/tally/notifications/v1"
	_ "github.com/tallyhq/tally/pkg/gen/tally/payments/v1"
	_ "github.com/tallyhq/tally/pkg/gen/tally/pricing/v1"
)

// documented reports whether the schemas of a proto package are in the document.
func documented(pkg protoreflect.FullName) bool {
	return strings.HasPrefix(string(pkg), "tally.") || pkg == "google.type"
}

// int64Formats gives the schemas' 64-bit integer fields, which protojson (and so gnostic) write
// as JSON strings, their format, "int64" or "uint64", as the Swagger 2.0 document did: a client
// then knows the string holds an integer. It also checks that files describes every service that
// has operations in the document, so that a new service's package is not forgotten above.
func int64Formats(root *yaml.Node, files *protoregistry.Files) error {
	schemas := get(get(root, "components"), "schemas")
	owner := map[string]protoreflect.FullName{} // schema name → message
	services := map[string]bool{}
	var messages []protoreflect.MessageDescriptor
	var walk func(protoreflect.MessageDescriptors)
	walk = func(ms protoreflect.MessageDescriptors) {
		for i := range ms.Len() {
			m := ms.Get(i)
			if m.IsMapEntry() {
				continue
			}
			messages = append(messages, m)
			walk(m.Messages())
		}
	}
	files.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if documented(fd.Package()) {
			walk(fd.Messages())
			for i := range fd.Services().Len() {
				services[string(fd.Services().Get(i).Name())] = true
			}
		}
		return true
	})
	slices.SortFunc(messages, func(a, b protoreflect.MessageDescriptor) int {
		return strings.Compare(string(a.FullName()), string(b.FullName()))
	})
	for _, m := range messages {
		name := schemaName(m)
		schema := get(schemas, name)
		if schema == nil {
			continue
		}
		if other, ok := owner[name]; ok {
			return fmt.Errorf("schema %s names both %s and %s", name, other, m.FullName())
		}
		owner[name] = m.FullName()
		props := get(schema, "properties")
		fields := m.Fields()
		for i := range fields.Len() {
			f := fields.Get(i)
			target := get(props, f.JSONName())
			kind := f.Kind()
			switch {
			case target == nil:
				continue
			case f.IsMap():
				target, kind = get(target, "additionalProperties"), f.MapValue().Kind()
			case f.IsList():
				target = get(target, "items")
			}
			format := int64Format(kind)
			if format == "" || target == nil || scalar(get(target, "type")) != "string" {
				continue
			}
			if got := scalar(get(target, "format")); got == "" {
				insertAfter(target, "type", "format", str(format))
			} else if got != format {
				return fmt.Errorf("%s.%s has format %q, want %q", name, f.JSONName(), got, format)
			}
		}
	}
	paths := get(root, "paths")
	for i := 1; i < len(paths.Content); i += 2 {
		item := paths.Content[i]
		for j := 1; j < len(item.Content); j += 2 {
			id := scalar(get(item.Content[j], "operationId"))
			service, _, ok := strings.Cut(id, "_")
			if ok && !services[service] {
				return fmt.Errorf("operation %s: no proto service %s is linked into openapi-finish (import its generated package in int64.go)", id, service)
			}
		}
	}
	return nil
}

// schemaName is the name gnostic gives a message's schema (naming=json, fq_schema_naming=false).
func schemaName(m protoreflect.MessageDescriptor) string {
	name := string(m.Name())
	if parent, ok := m.Parent().(protoreflect.MessageDescriptor); ok {
		name = string(parent.Name()) + "_" + name
	}
	return strings.ToUpper(name[:1]) + name[1:]
}

func int64Format(k protoreflect.Kind) string {
	switch k {
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return "int64"
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return "uint64"
	}
	return ""
}
