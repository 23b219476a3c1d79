package grpcapi

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/tallyhq/tally/pkg/catalog"
	instancesv1 "github.com/tallyhq/tally/pkg/gen/tally/instances/v1"
	pkgids "github.com/tallyhq/tally/pkg/ids"
	"github.com/tallyhq/tally/pkg/server/servertest"
	"github.com/tallyhq/tally/pkg/textcheck"
	"github.com/tallyhq/tally/services/instances-metering/internal/rental"
)

// checkWrite is what the service checks of a write request before it touches the database.
func checkWrite(m proto.Message) (map[string]string, error) {
	switch req := m.(type) {
	case *instancesv1.StartMeteringRequest:
		r := startRequest(req)
		return map[string]string{"instance_id": r.InstanceID, "org_id": r.OrgID, "instance_type": r.InstanceType,
			"idempotency_key": r.IdempotencyKey}, r.Validate()
	case *instancesv1.StopMeteringRequest:
		err := pkgids.ID("instance_id", req.GetInstanceId())
		if err != nil {
			err = fmt.Errorf("%w: %w", rental.ErrInvalid, err)
		}
		return map[string]string{"instance_id": req.GetInstanceId()}, err
	}
	panic("not a write request")
}

func TestWriteRequestValidation(t *testing.T) {
	t.Parallel()
	start := func(mut func(*instancesv1.StartMeteringRequest)) proto.Message {
		r := &instancesv1.StartMeteringRequest{InstanceId: "i-1", OrgId: "acme", InstanceType: "gpu-a10g-small", IdempotencyKey: "start-1"}
		mut(r)
		return r
	}
	tests := []struct {
		name    string
		req     proto.Message
		wantErr string
	}{
		{"start", start(func(*instancesv1.StartMeteringRequest) {}), ""},
		{"key with a space", start(func(r *instancesv1.StartMeteringRequest) { r.IdempotencyKey = "start 1" }), "idempotency_key must not contain spaces"},
		{"key with a zero-width space", start(func(r *instancesv1.StartMeteringRequest) { r.IdempotencyKey = "start\u200B1" }),
			"idempotency_key contains an invisible format character (U+200B)"},
		{"instance id with NUL", start(func(r *instancesv1.StartMeteringRequest) { r.InstanceId = "i\x00" }), "instance_id contains a NUL character"},
		{"org id with bidi", start(func(r *instancesv1.StartMeteringRequest) { r.OrgId = "ac\u2067me" }), "org_id contains a bidirectional control character (U+2067)"},
		{"upper-case instance type", start(func(r *instancesv1.StartMeteringRequest) { r.InstanceType = "GPU" }), `instance_type: invalid price: id "GPU" may hold only`},
		{"long instance type echoed in part", start(func(r *instancesv1.StartMeteringRequest) { r.InstanceType = strings.Repeat("Z", 50) }),
			`id "` + strings.Repeat("Z", 32) + `"…`},
		{"stop", &instancesv1.StopMeteringRequest{InstanceId: "i-1"}, ""},
		{"stop with a control character", &instancesv1.StopMeteringRequest{InstanceId: "i-\x7f"}, "instance_id contains a control character (U+007F)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := checkWrite(tt.req)
			servertest.RequireRefusal(t, Errors, err, tt.wantErr)
		})
	}
}

// FuzzWriteRequests decodes arbitrary bytes as StartMetering and StopMetering requests and checks
// them as the service does: a refusal is always InvalidArgument, and accepted ids and keys keep
// the platform's rules (so a derived key like rental:<instance>:<n> is always well formed).
func FuzzWriteRequests(f *testing.F) {
	for i, m := range []proto.Message{
		&instancesv1.StartMeteringRequest{InstanceId: "i-1", OrgId: "acme", InstanceType: "gpu-a10g-small", IdempotencyKey: "k"},
		&instancesv1.StopMeteringRequest{InstanceId: "i-1"},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), b)
	}
	requests := []proto.Message{&instancesv1.StartMeteringRequest{}, &instancesv1.StopMeteringRequest{}}
	f.Fuzz(func(t *testing.T, op uint8, wire []byte) {
		m := proto.Clone(requests[int(op)%len(requests)])
		if proto.Unmarshal(wire, m) != nil {
			return // refused by the server's codec with InvalidArgument
		}
		ids, err := checkWrite(m)
		if err != nil {
			if code := Errors.Code(err); code != codes.InvalidArgument {
				t.Fatalf("%T refused with %v: %v", m, code, err)
			}
			return
		}
		for field, v := range ids {
			if err := textcheck.Identifier(field, v, pkgids.MaxKeyLength); err != nil {
				t.Fatalf("%T accepted: %v", m, err)
			}
		}
		if typ := ids["instance_type"]; typ != "" && catalog.ValidateID(typ) != nil {
			t.Fatalf("accepted instance type %q", typ)
		}
	})
}
