// Package grpcapi serves tally.instances.v1.InstanceMeteringService: it maps protobuf to the
// metering domain and domain errors to gRPC statuses (in errors.go, the one place that does).
package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	instancesv1 "github.com/tallyhq/tally/pkg/gen/tally/instances/v1"
	"github.com/tallyhq/tally/pkg/grpcmap"
	"github.com/tallyhq/tally/pkg/ids"
	"github.com/tallyhq/tally/pkg/textcheck"
	"github.com/tallyhq/tally/services/instances-metering/internal/app"
	"github.com/tallyhq/tally/services/instances-metering/internal/rental"
)

// Server implements InstanceMeteringServiceServer.
type Server struct {
	instancesv1.UnimplementedInstanceMeteringServiceServer
	meter *app.Meter
}

var _ instancesv1.InstanceMeteringServiceServer = (*Server)(nil)

// New returns a Server over m.
func New(m *app.Meter) (*Server, error) {
	if m == nil {
		return nil, errors.New("grpcapi: meter is required")
	}
	return &Server{meter: m}, nil
}

// startRequest maps a StartMeteringRequest; app.StartRequest.Validate checks it.
func startRequest(req *instancesv1.StartMeteringRequest) app.StartRequest {
	return app.StartRequest{
		InstanceID: req.GetInstanceId(), OrgID: req.GetOrgId(), InstanceType: req.GetInstanceType(), IdempotencyKey: req.GetIdempotencyKey(),
	}
}

// StartMetering implements InstanceMeteringServiceServer.
func (s *Server) StartMetering(ctx context.Context, req *instancesv1.StartMeteringRequest) (*instancesv1.StartMeteringResponse, error) {
	r, replayed, err := s.meter.Start(ctx, startRequest(req))
	if err != nil {
		return nil, err
	}
	return &instancesv1.StartMeteringResponse{Rental: rentalToProto(r), Replayed: replayed}, nil
}

// StopMetering implements InstanceMeteringServiceServer.
func (s *Server) StopMetering(ctx context.Context, req *instancesv1.StopMeteringRequest) (*instancesv1.StopMeteringResponse, error) {
	r, err := s.meter.Stop(ctx, req.GetInstanceId())
	if err != nil {
		return nil, err
	}
	return &instancesv1.StopMeteringResponse{Rental: rentalToProto(r)}, nil
}

// GetRental implements InstanceMeteringServiceServer. A rental of another organization than the
// one named is not found, so its existence does not leak.
func (s *Server) GetRental(ctx context.Context, req *instancesv1.GetRentalRequest) (*instancesv1.GetRentalResponse, error) {
	if org := req.GetOrgId(); org != "" {
		if err := ids.OrgID(org); err != nil {
			return nil, fmt.Errorf("%w: %w", rental.ErrInvalid, err)
		}
	}
	r, err := s.meter.Get(ctx, req.GetInstanceId())
	if err == nil && req.GetOrgId() != "" && r.OrgID != req.GetOrgId() {
		err = fmt.Errorf("%w: instance %s in organization %s", rental.ErrNotFound, textcheck.Quote(req.GetInstanceId()), textcheck.Quote(req.GetOrgId()))
	}
	if err != nil {
		return nil, err
	}
	return &instancesv1.GetRentalResponse{Rental: rentalToProto(r)}, nil
}

// ListRentals implements InstanceMeteringServiceServer.
func (s *Server) ListRentals(ctx context.Context, req *instancesv1.ListRentalsRequest) (*instancesv1.ListRentalsResponse, error) {
	size, before, err := grpcmap.SeqPage(req, 500, rental.ErrInvalid)
	if err != nil {
		return nil, err
	}
	rs, err := s.meter.List(ctx, req.GetOrgId(), size+1, before)
	if err != nil {
		return nil, err
	}
	rs, next := grpcmap.Page(rs, size, func(r rental.Rental) string { return strconv.FormatInt(r.ID, 10) })
	return &instancesv1.ListRentalsResponse{Rentals: grpcmap.Map(rs, rentalToProto), NextPageToken: next}, nil
}

// WatchInstanceEvents implements InstanceMeteringServiceServer.
func (s *Server) WatchInstanceEvents(req *instancesv1.WatchInstanceEventsRequest, stream instancesv1.InstanceMeteringService_WatchInstanceEventsServer) error {
	if req.GetAfterSequence() < 0 {
		return fmt.Errorf("%w: after_sequence must not be negative", rental.ErrInvalid)
	}
	err := s.meter.WatchEvents(stream.Context(), req.GetAfterSequence(), func(e rental.Event) error {
		return stream.Send(&instancesv1.WatchInstanceEventsResponse{Event: eventToProto(e)})
	})
	if stream.Context().Err() != nil {
		return nil // the client went away
	}
	return err
}
