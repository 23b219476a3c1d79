package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/pkg/textcheck"
)

// Bad bytes in a REST request are the caller's mistake, answered 400 like the gRPC services
// answer InvalidArgument. Two things the gRPC side cannot see are checked here:
//
//   - The path and the query string: grpc-gateway copies their decoded bytes into request
//     fields, and a field with invalid UTF-8 cannot even be marshalled for the gRPC call (a 500
//     before this check). withCleanURL refuses invalid UTF-8 and control characters in either.
//   - Integers in the body: protojson reads 1e3, "1e3" and 1.0 as 1000 and 1 for an integer
//     field. strictJSON refuses any integer field whose JSON is not written in plain digits.

// withCleanURL answers 400 to a request whose path or query string holds invalid UTF-8 or
// control characters.
func withCleanURL(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := checkURL(r.URL); err != nil {
			server.WriteHTTPError(w, http.StatusBadRequest, codes.InvalidArgument, err.Error())
			return
		}
		next.ServeHTTP(w, r)
	})
}

func checkURL(u *url.URL) error {
	if err := textcheck.Printable("the path", u.Path); err != nil {
		return err
	}
	if strings.ContainsAny(u.Path, "\t\n") {
		return &textcheck.Error{Field: "the path", Problem: "contains a control character"}
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return &textcheck.Error{Field: "the query string", Problem: "is not validly percent-encoded"}
	}
	for k, vs := range q {
		if err := textcheck.Printable("a query parameter name", k); err != nil {
			return err
		}
		for _, v := range vs {
			if err := textcheck.Printable("query parameter "+textcheck.Quote(k), v); err != nil {
				return err
			}
		}
	}
	return nil
}

// strictJSON is m with a body decoder that refuses integers not written as integers before
// decoding like m does.
type strictJSON struct {
	runtime.Marshaler
}

// NewDecoder implements runtime.Marshaler.
func (m strictJSON) NewDecoder(r io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		body, err := io.ReadAll(r)
		if err != nil {
			return fmt.Errorf("reading the body: %w", err)
		}
		if len(bytes.TrimSpace(body)) == 0 {
			return io.EOF // an empty body is an empty message, as with grpc-gateway's own decoder
		}
		if err := oneJSONValue(body); err != nil {
			return err
		}
		md := descriptorOf(v)
		if md != nil {
			if err := checkIntegers(body, md); err != nil {
				return err
			}
		}
		if err := m.Unmarshal(body, v); err != nil {
			return decodeError(err, md)
		}
		return nil
	})
}

// decodeError is the clean message of a body that does not decode into md (cleanDecodeError),
// naming the message when the body is no JSON for it at all: "the request body is not valid
// JSON for CreditRequest".
func decodeError(err error, md protoreflect.MessageDescriptor) error {
	msg := cleanDecodeError(err.Error())
	if md != nil && (msg == msgNotJSON || msg == msgNoMatch) {
		msg += " for " + string(md.Name())
	}
	return errors.New(msg)
}

// oneJSONValue refuses a body with anything but white space after its first JSON value, which
// grpc-gateway's own decoder would silently ignore. A body that is not JSON is left to the
// decoder to refuse.
func oneJSONValue(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	var first json.RawMessage
	if err := dec.Decode(&first); err != nil {
		return nil
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("the body holds more than one JSON value")
	}
	return nil
}

// descriptorOf returns the message descriptor of what grpc-gateway decodes a body into: a
// request (*T) or, for `body: "field"`, the address of a message field (**T).
func descriptorOf(v any) protoreflect.MessageDescriptor {
	if m, ok := v.(proto.Message); ok {
		return m.ProtoReflect().Descriptor()
	}
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Pointer {
		return nil
	}
	if m, ok := reflect.New(t.Elem().Elem()).Interface().(proto.Message); ok {
		return m.ProtoReflect().Descriptor()
	}
	return nil
}

// maxJSONDepth bounds how deep checkIntegers follows a body (protojson refuses deeper ones).
const maxJSONDepth = 32

// checkIntegers walks body along md and refuses an integer field written other than in digits.
// A body that is not JSON is left to the decoder to refuse.
func checkIntegers(body []byte, md protoreflect.MessageDescriptor) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil
	}
	return checkJSONMessage(doc, md, "", 0)
}

func checkJSONMessage(v any, md protoreflect.MessageDescriptor, path string, depth int) error {
	if depth > maxJSONDepth {
		return nil
	}
	switch md.FullName() {
	case "google.protobuf.Int64Value", "google.protobuf.Int32Value", "google.protobuf.UInt64Value", "google.protobuf.UInt32Value":
		return checkJSONInteger(v, path)
	case "google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue", "google.protobuf.Any":
		return nil // free-form JSON
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	for key, val := range obj {
		fd := md.Fields().ByJSONName(key)
		if fd == nil {
			fd = md.Fields().ByTextName(key)
		}
		if fd == nil {
			continue // protojson refuses unknown fields
		}
		name := key
		if path != "" {
			name = path + "." + key
		}
		var err error
		switch {
		case fd.IsMap():
			entries, _ := val.(map[string]any)
			for k, ev := range entries {
				if isIntegerKind(fd.MapKey().Kind()) && !isIntegerLiteral(k) {
					return fmt.Errorf("%s: map keys must be integers written in digits", name)
				}
				if err = checkJSONValue(fd.MapValue(), ev, name+" value", depth); err != nil {
					break
				}
			}
		case fd.IsList():
			items, _ := val.([]any)
			for i, item := range items {
				if err = checkJSONValue(fd, item, fmt.Sprintf("%s[%d]", name, i), depth); err != nil {
					break
				}
			}
		default:
			err = checkJSONValue(fd, val, name, depth)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func checkJSONValue(fd protoreflect.FieldDescriptor, v any, name string, depth int) error {
	switch {
	case isIntegerKind(fd.Kind()):
		return checkJSONInteger(v, name)
	case fd.Kind() == protoreflect.EnumKind:
		if n, ok := v.(json.Number); ok && !isIntegerLiteral(string(n)) {
			return fmt.Errorf("%s must be an enum value name or number", name)
		}
	case fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind:
		return checkJSONMessage(v, fd.Message(), name, depth+1)
	}
	return nil
}

// checkJSONInteger accepts an integer field as a JSON number or string of plain digits.
func checkJSONInteger(v any, name string) error {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = string(x)
	case string:
		s = x
	default:
		return nil // null, or a type protojson refuses itself
	}
	if !isIntegerLiteral(s) {
		return fmt.Errorf("%s must be an integer written in digits, without exponent or fraction", name)
	}
	return nil
}

func isIntegerKind(k protoreflect.Kind) bool {
	switch k {
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind, protoreflect.Uint32Kind, protoreflect.Fixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return true
	}
	return false
}

// isIntegerLiteral reports whether s is an optional minus sign and 1 to 20 decimal digits.
func isIntegerLiteral(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
