// Package textchecktest attacks a running gRPC service with bad bytes. It walks the string
// fields of every request from the proto descriptors (nested messages, list elements, map keys
// and values), sets each in an otherwise valid request to each of BadValues, sends it as raw
// wire bytes (so invalid UTF-8, which the Go protobuf library refuses to marshal, is sent too)
// and requires InvalidArgument naming the field, with nothing written. A field or an RPC added
// later is attacked without editing the tests.
package textchecktest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/tallyhq/tally/pkg/auth"
)

// Bad is one kind of text no string field may hold.
type Bad struct {
	Name  string
	Value string
}

// BadValues are what every string field of every request must refuse: NUL, invalid UTF-8,
// bidirectional overrides and isolates, and control characters.
func BadValues() []Bad {
	return []Bad{
		{"NUL", "ab\x00cd"},
		{"invalid UTF-8", "ab\xffcd"},
		{"encoded surrogate", "ab\xed\xa0\x80cd"},
		{"right-to-left override", "ab\u202Ecd"},
		{"left-to-right isolate", "ab\u2066cd"},
		{"right-to-left mark", "ab\u200Fcd"},
		{"escape", "ab\x1b[2Jcd"},
		{"carriage return", "ab\rcd"},
		{"C1 control", "ab\u0085cd"},
	}
}

// Case is a request with one string field set to one bad value, as wire bytes.
type Case struct {
	// Field names the field as tally's errors do: "usage.model_id", "metadata key",
	// "dimensions[0].unit".
	Field string
	Bad   Bad
	Wire  []byte
}

// step is one move from a message to a field of it.
type step struct {
	fd   protoreflect.FieldDescriptor
	kind stepKind
}

type stepKind int

const (
	plain stepKind = iota
	listElem
	mapKey
	mapValue
)

// Location is a string field reachable from a request.
type location struct {
	name  string
	steps []step
}

// maxDepth bounds how deep Cases goes into nested messages.
const maxDepth = 6

// Cases returns, for every string field reachable from base's type, a case per bad value. base
// itself is left unchanged.
func Cases(t testing.TB, base proto.Message) []Case {
	t.Helper()
	locs := locations(base.ProtoReflect().Descriptor(), "", nil, nil)
	var out []Case
	for _, loc := range locs {
		for _, bad := range BadValues() {
			out = append(out, Case{Field: loc.name, Bad: bad, Wire: wireWith(t, base, loc, bad.Value)})
		}
	}
	return out
}

// Fields names every string field reachable from md, as Case.Field does.
func Fields(md protoreflect.MessageDescriptor) []string {
	var names []string
	for _, l := range locations(md, "", nil, nil) {
		names = append(names, l.name)
	}
	return names
}

func locations(md protoreflect.MessageDescriptor, prefix string, steps []step, stack []protoreflect.FullName) []location {
	if len(stack) >= maxDepth || slices.Contains(stack, md.FullName()) {
		return nil
	}
	stack = append(stack, md.FullName())
	join := func(name string) string {
		if prefix == "" {
			return name
		}
		return prefix + "." + name
	}
	with := func(s step) []step { return append(slices.Clone(steps), s) }
	var out []location
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		name := join(string(fd.Name()))
		switch {
		case fd.IsMap():
			if fd.MapKey().Kind() == protoreflect.StringKind {
				out = append(out, location{name + " key", with(step{fd, mapKey})})
			}
			switch fd.MapValue().Kind() {
			case protoreflect.StringKind:
				out = append(out, location{name + " value", with(step{fd, mapValue})})
			case protoreflect.MessageKind:
				out = append(out, locations(fd.MapValue().Message(), name+" value", with(step{fd, mapValue}), stack)...)
			}
		case fd.Kind() == protoreflect.StringKind && fd.IsList():
			out = append(out, location{name + "[0]", with(step{fd, listElem})})
		case fd.Kind() == protoreflect.StringKind:
			out = append(out, location{name, with(step{fd, plain})})
		case fd.Kind() == protoreflect.MessageKind && fd.IsList():
			out = append(out, locations(fd.Message(), name+"[0]", with(step{fd, listElem}), stack)...)
		case fd.Kind() == protoreflect.MessageKind:
			out = append(out, locations(fd.Message(), name, with(step{fd, plain}), stack)...)
		}
	}
	return out
}

// set writes v at loc in m, creating the messages, list elements and map entries on the way.
func set(m protoreflect.Message, loc location, v string) {
	for i, s := range loc.steps {
		last := i == len(loc.steps)-1
		switch s.kind {
		case plain:
			if last {
				m.Set(s.fd, protoreflect.ValueOfString(v))
				return
			}
			m = m.Mutable(s.fd).Message()
		case listElem:
			l := m.Mutable(s.fd).List()
			if last {
				if l.Len() > 0 {
					l.Set(0, protoreflect.ValueOfString(v))
				} else {
					l.Append(protoreflect.ValueOfString(v))
				}
				return
			}
			if l.Len() == 0 {
				l.Append(l.NewElement())
			}
			m = l.Get(0).Message()
		case mapKey:
			mp := m.Mutable(s.fd).Map()
			val := mp.NewValue()
			if s.fd.MapValue().Kind() == protoreflect.StringKind {
				val = protoreflect.ValueOfString("v")
			}
			mp.Set(protoreflect.ValueOfString(v).MapKey(), val)
			return
		case mapValue:
			mp := m.Mutable(s.fd).Map()
			key := protoreflect.ValueOfString("textchecktest").MapKey()
			if last {
				mp.Set(key, protoreflect.ValueOfString(v))
				return
			}
			m = mp.Mutable(key).Message()
		}
	}
}

// wireWith marshals base with loc set to bad. Go's protobuf refuses to marshal invalid UTF-8, so
// the field is set to a placeholder of the same length, whose bytes are then replaced: string
// and bytes fields share their wire form, and no length prefix changes.
func wireWith(t testing.TB, base proto.Message, loc location, bad string) []byte {
	t.Helper()
	for attempt := range 16 {
		placeholder := placeholderOf(len(bad), attempt)
		m := proto.Clone(base)
		set(m.ProtoReflect(), loc, placeholder)
		wire, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		require.NoError(t, err)
		if bytes.Count(wire, []byte(placeholder)) == 1 {
			return bytes.Replace(wire, []byte(placeholder), []byte(bad), 1)
		}
	}
	require.FailNow(t, "no unique placeholder", "field %s", loc.name)
	return nil
}

func placeholderOf(n, attempt int) string {
	alphabet := "~^`|"
	var b strings.Builder
	for i := range n {
		b.WriteByte(alphabet[(i*(attempt+1)+attempt)%len(alphabet)])
	}
	return b.String()
}

// rawCodec sends wire bytes as they are and decodes replies as protobuf.
type rawCodec struct{}

type rawMessage []byte

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if b, ok := v.(rawMessage); ok {
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("textchecktest: cannot marshal %T", v)
	}
	b, err := proto.Marshal(m)
	return mem.BufferSlice{mem.SliceBuffer(b)}, err
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("textchecktest: cannot unmarshal into %T", v)
	}
	return proto.Unmarshal(data.Materialize(), m)
}

func (rawCodec) Name() string { return "proto" }

// Send calls method with a request given as wire bytes and returns the call's error. A
// server-streaming method succeeds when its first message arrives; a bidirectional one when it
// ends cleanly after the client closed its side.
func Send(ctx context.Context, conn grpc.ClientConnInterface, method protoreflect.MethodDescriptor, wire []byte, token string) error {
	full := "/" + string(method.Parent().FullName()) + "/" + string(method.Name())
	opts := []grpc.CallOption{grpc.ForceCodecV2(rawCodec{})}
	if token != "" {
		opts = append(opts, grpc.PerRPCCredentials(auth.TokenCredentials(token)))
	}
	if !method.IsStreamingServer() && !method.IsStreamingClient() {
		return conn.Invoke(ctx, full, rawMessage(wire), &emptypb.Empty{}, opts...)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: method.IsStreamingClient()}, full, opts...)
	if err != nil {
		return err
	}
	if err := st.SendMsg(rawMessage(wire)); err != nil {
		return st.RecvMsg(&emptypb.Empty{})
	}
	if err := st.CloseSend(); err != nil {
		return err
	}
	if !method.IsStreamingClient() {
		return st.RecvMsg(&emptypb.Empty{})
	}
	// A bidirectional stream may answer before it reads the request (DebitStream's window): its
	// outcome is how it ends once the client closed its side.
	for {
		if err := st.RecvMsg(&emptypb.Empty{}); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// Call is how a method of a target is called validly.
type Call struct {
	// Token is the caller's bearer token; pick one the method's policy admits, so that the
	// attack reaches validation.
	Token string
	// Request is a valid request; every string field of its type is attacked in a copy.
	Request proto.Message
	// BaseCode is what Request itself gets (codes.OK unless it names, say, an unknown hold).
	// Request is sent last, after the bad ones; it must not be refused as invalid.
	BaseCode codes.Code
}

// Target is a running service under attack.
type Target struct {
	Service protoreflect.ServiceDescriptor
	Conn    grpc.ClientConnInterface
	// Calls holds a Call for every method of Service, by method name. A method without one
	// fails the test: a new RPC cannot go unattacked.
	Calls map[string]Call
	// Rows counts the rows of the service's tables (see RowCounts); no bad request may change them.
	Rows func(t testing.TB) map[string]int64
}

// Attack sends every case of every method of tg and requires InvalidArgument naming the field,
// no echo of the bad text, and no row written.
func Attack(t *testing.T, tg Target) {
	t.Helper()
	methods := tg.Service.Methods()
	for i := 0; i < methods.Len(); i++ {
		md := methods.Get(i)
		call, ok := tg.Calls[string(md.Name())]
		if !ok {
			t.Errorf("%s has no valid request in the bad-bytes attack: add one", md.FullName())
			continue
		}
		require.Equal(t, md.Input().FullName(), call.Request.ProtoReflect().Descriptor().FullName(), "request type of %s", md.Name())
		t.Run(string(md.Name()), func(t *testing.T) {
			before := tg.Rows(t)
			cases := Cases(t, call.Request)
			for _, c := range cases {
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				err := Send(ctx, tg.Conn, md, c.Wire, call.Token)
				cancel()
				st := status.Convert(err)
				require.Equal(t, codes.InvalidArgument.String(), st.Code().String(), "%s with %s in %s: %v", md.Name(), c.Bad.Name, c.Field, err)
				require.Contains(t, st.Message(), c.Field, "%s: the message names the field", md.Name())
				require.NotContains(t, st.Message(), c.Bad.Value, "%s: the message does not echo the bad text", md.Name())
			}
			require.Equal(t, before, tg.Rows(t), "%s: a refused request wrote rows", md.Name())
			wire, err := proto.Marshal(call.Request)
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			err = Send(ctx, tg.Conn, md, wire, call.Token)
			require.Equal(t, call.BaseCode.String(), status.Code(err).String(), "%s: the valid request: %v", md.Name(), err)
			t.Logf("%s: %d bad requests over %d string fields refused", md.Name(), len(cases), len(cases)/len(BadValues()))
		})
	}
}

// RowCounts returns a function counting the rows of every table of schema in the database at
// dbURL, for Target.Rows.
func RowCounts(dbURL, schema string) func(t testing.TB) map[string]int64 {
	return func(t testing.TB) map[string]int64 {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		pool, err := pgxpool.New(ctx, dbURL)
		require.NoError(t, err)
		defer pool.Close()
		rows, err := pool.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE' ORDER BY 1`, schema)
		require.NoError(t, err)
		var tables []string
		for rows.Next() {
			var name string
			require.NoError(t, rows.Scan(&name))
			tables = append(tables, name)
		}
		require.NoError(t, rows.Err())
		require.NotEmpty(t, tables, "schema %s has no tables", schema)
		counts := map[string]int64{}
		for _, name := range tables {
			var n int64
			q := fmt.Sprintf(`SELECT count(*) FROM %s.%s`, quoteIdent(schema), quoteIdent(name))
			require.NoError(t, pool.QueryRow(ctx, q).Scan(&n))
			counts[name] = n
		}
		return counts
	}
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
