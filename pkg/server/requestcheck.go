package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/tallyhq/tally/pkg/textcheck"
)

// Bad bytes are the caller's mistake. grpc-go decodes a request before any interceptor runs and
// answers a message it cannot decode (most often a string field holding invalid UTF-8) with
// codes.Internal and the decoder's text. requestCodec decodes instead of grpc-go's proto codec:
// when decoding fails it leaves the message empty but for a marker in its unknown fields, naming
// the field that holds invalid UTF-8, and reports success; checkRequest, run by the first
// interceptors, finds the marker and refuses the call with InvalidArgument. The marker lives in
// the message itself, so nothing is kept per call.
//
// checkRequest also holds every request to the floor of the text rules, whatever the service's
// own validation says: no string field anywhere in a request may hold NUL, control or
// bidirectional characters (textcheck.Printable), and every enum field names a value of its enum.

// badMessageField is the unknown field that marks a request that did not decode: the highest
// field number protobuf allows, which no tally message uses.
const badMessageField = protowire.MaxValidNumber

// maxRequestDepth bounds the nesting checkRequest walks (protobuf-go's own decoding limit is 10000).
const maxRequestDepth = 32

// requestCodec is grpc-go's proto codec except that a request that does not decode becomes a
// marked message instead of an error (see above).
type requestCodec struct {
	encoding.CodecV2
}

// newRequestCodec wraps the registered proto codec.
func newRequestCodec() requestCodec {
	return requestCodec{CodecV2: encoding.GetCodecV2(grpcproto.Name)}
}

// Unmarshal implements encoding.CodecV2.
func (c requestCodec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.CodecV2.Unmarshal(data, v)
	m, ok := v.(proto.Message)
	if err == nil || !ok {
		return err
	}
	path := invalidUTF8Path(data.Materialize(), m.ProtoReflect().Descriptor(), 0)
	proto.Reset(m)
	marker := protowire.AppendTag(nil, badMessageField, protowire.BytesType)
	var payload []byte
	for _, n := range path {
		payload = protowire.AppendVarint(payload, n)
	}
	m.ProtoReflect().SetUnknown(protowire.AppendBytes(marker, payload))
	return nil
}

// invalidUTF8Path returns the path to the first string field of b that holds invalid UTF-8, or
// nil when there is none (or b is malformed before one is found). The path is the field numbers
// from the top, each repeated field's followed by the index of the element.
func invalidUTF8Path(b []byte, md protoreflect.MessageDescriptor, depth int) []uint64 {
	seen := map[protowire.Number]uint64{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil
		}
		b = b[n:]
		if typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return nil
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil
		}
		b = b[n:]
		fd := md.Fields().ByNumber(num)
		if fd == nil {
			continue
		}
		here := []uint64{uint64(num)} //nolint:gosec // a field number is positive
		if fd.IsList() {
			here = append(here, seen[num])
			seen[num]++
		}
		switch {
		case fd.Kind() == protoreflect.StringKind && !utf8.Valid(v):
			return here
		case fd.Kind() == protoreflect.MessageKind && depth < maxRequestDepth:
			if sub := invalidUTF8Path(v, fd.Message(), depth+1); sub != nil {
				return append(here, sub...)
			}
		}
	}
	return nil
}

// markedPath returns the marker of a request that did not decode: the name of the field with
// invalid UTF-8 ("" when unknown) and whether m is marked at all.
func markedPath(m protoreflect.Message) (string, bool) {
	b := m.GetUnknown()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", false
		}
		b = b[n:]
		if num != badMessageField || typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return "", false
			}
			b = b[n:]
			continue
		}
		payload, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return "", true
		}
		var nums []uint64
		for len(payload) > 0 {
			v, n := protowire.ConsumeVarint(payload)
			if n < 0 {
				return "", true
			}
			nums = append(nums, v)
			payload = payload[n:]
		}
		return fieldPath(m.Descriptor(), nums), true
	}
	return "", false
}

// fieldPath names the field that path (see invalidUTF8Path) leads to, "" when it leads nowhere.
// Names are those of checkFields: "usage.model_id", "dimensions[1].unit", "metadata key".
func fieldPath(md protoreflect.MessageDescriptor, path []uint64) string {
	var b strings.Builder
	for len(path) > 0 {
		if md == nil || path[0] > uint64(protowire.MaxValidNumber) {
			return ""
		}
		fd := md.Fields().ByNumber(protowire.Number(path[0])) //nolint:gosec // written from a field number above
		path = path[1:]
		if fd == nil {
			return ""
		}
		switch {
		case md.IsMapEntry():
			b.WriteString(" " + string(fd.Name()))
		case b.Len() > 0:
			b.WriteString("." + string(fd.Name()))
		default:
			b.WriteString(string(fd.Name()))
		}
		if fd.IsList() {
			if len(path) == 0 {
				return ""
			}
			fmt.Fprintf(&b, "[%d]", path[0])
			path = path[1:]
		}
		md = fd.Message()
	}
	return b.String()
}

// checkRequest refuses a request that did not decode or breaks the floor of the text rules.
func checkRequest(m proto.Message) error {
	r := m.ProtoReflect()
	if path, bad := markedPath(r); bad {
		if path == "" {
			return status.Error(codes.InvalidArgument, "the request is not a valid protobuf message")
		}
		return invalidArgument(&textcheck.Error{Field: path, Problem: "is not valid UTF-8"})
	}
	if err := checkFields(r, 0); err != nil {
		return invalidArgument(err)
	}
	return nil
}

// checkFields checks every field of m. A refusal names its field from m down ("usage.model_id",
// "dimensions[1].unit", "metadata key"); the names are built only then, as the error returns up
// through the fields that hold it: requests that pass (nearly all) build no strings.
func checkFields(m protoreflect.Message, depth int) *textcheck.Error {
	var err *textcheck.Error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				if fd.MapKey().Kind() == protoreflect.StringKind {
					if err = asTextError(textcheck.Printable("", k.String())); err != nil {
						err.Field = string(fd.Name()) + " key"
						return false
					}
				}
				if err = checkValue(fd.MapValue(), mv, depth); err != nil {
					err.Field = within(string(fd.Name())+" value", err.Field)
				}
				return err == nil
			})
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len() && err == nil; i++ {
				if err = checkValue(fd, l.Get(i), depth); err != nil {
					err.Field = within(fmt.Sprintf("%s[%d]", fd.Name(), i), err.Field)
				}
			}
		default:
			if err = checkValue(fd, v, depth); err != nil {
				err.Field = within(string(fd.Name()), err.Field)
			}
		}
		return err == nil
	})
	return err
}

// within names a field (of a refusal) inside the value named name: name itself for the
// value's own refusal (field "").
func within(name, field string) string {
	if field == "" {
		return name
	}
	return name + "." + field
}

// asTextError is err as the *textcheck.Error every textcheck check returns, nil for none.
func asTextError(err error) *textcheck.Error {
	if err == nil {
		return nil
	}
	var te *textcheck.Error
	if errors.As(err, &te) {
		return te
	}
	return &textcheck.Error{Problem: err.Error()}
}

// checkValue checks one value of fd; a refusal's Field is its path below the value ("" for
// the value itself), which the caller completes.
func checkValue(fd protoreflect.FieldDescriptor, v protoreflect.Value, depth int) *textcheck.Error {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return asTextError(textcheck.Printable("", v.String()))
	case protoreflect.EnumKind:
		if fd.Enum().Values().ByNumber(v.Enum()) == nil {
			return &textcheck.Error{Problem: fmt.Sprintf("is not a known value (%d)", v.Enum())}
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		if depth >= maxRequestDepth {
			return &textcheck.Error{Problem: "is nested too deeply"}
		}
		return checkFields(v.Message(), depth+1)
	}
	return nil
}

// checkRequestsUnary refuses unary requests that checkRequest refuses.
func checkRequestsUnary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if m, ok := req.(proto.Message); ok {
			if err := checkRequest(m); err != nil {
				return nil, err
			}
		}
		return handler(ctx, req)
	}
}

// checkRequestsStream refuses streamed requests that checkRequest refuses, as RecvMsg receives them.
func checkRequestsStream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return handler(srv, checkedStream{ss})
	}
}

type checkedStream struct{ grpc.ServerStream }

// RecvMsg receives m and checks it.
func (s checkedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if pm, ok := m.(proto.Message); ok {
		return checkRequest(pm)
	}
	return nil
}
