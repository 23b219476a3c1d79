// Package grpcapi serves tally.pricing.v1.PricingService: proto ↔ domain mapping (the catalog
// conversions live in pkg/catalog), the one error → status mapping and the auth policy.
package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/catalog"
	pricingv1 "github.com/tallyhq/tally/pkg/gen/tally/pricing/v1"
	"github.com/tallyhq/tally/pkg/textcheck"
	"github.com/tallyhq/tally/services/pricing/internal/app"
	"github.com/tallyhq/tally/services/pricing/internal/pricing"
)

// Config wires a Server.
type Config struct {
	App *app.App
	// Heartbeat is how often an idle WatchCatalog stream gets a message without a snapshot
	// (default 15s), so clients can detect dead connections.
	Heartbeat time.Duration
}

// Server implements pricingv1.PricingServiceServer.
type Server struct {
	pricingv1.UnimplementedPricingServiceServer
	app       *app.App
	heartbeat time.Duration
	// snapshot caches the wire form of the newest catalog, shared by every stream.
	snapshot atomic.Pointer[pricingv1.CatalogSnapshot]
}

var _ pricingv1.PricingServiceServer = (*Server)(nil)

// New builds a Server.
func New(cfg Config) (*Server, error) {
	if cfg.App == nil {
		return nil, errors.New("grpcapi: app is required")
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 15 * time.Second
	}
	return &Server{app: cfg.App, heartbeat: cfg.Heartbeat}, nil
}

// Register registers the service on g.
func (s *Server) Register(g *grpc.Server) { pricingv1.RegisterPricingServiceServer(g, s) }

// atOrNow reads an optional time field.
func (s *Server) atOrNow(field string, ts *timestamppb.Timestamp) (time.Time, error) {
	if ts == nil {
		return s.app.Now(), nil
	}
	if err := ts.CheckValid(); err != nil {
		return time.Time{}, fmt.Errorf("%w: %s is not a valid time", pricing.ErrInvalid, field)
	}
	return ts.AsTime(), nil
}

// maxIDLen is the longest model or instance type id (catalog.ValidateID).
const maxIDLen = 128

func requireID(field, id string) error {
	if id == "" {
		return fmt.Errorf("%w: %s is required", pricing.ErrInvalid, field)
	}
	if err := textcheck.Identifier(field, id, maxIDLen); err != nil {
		return fmt.Errorf("%w: %w", pricing.ErrInvalid, err)
	}
	return nil
}

func modelsProto(vs []catalog.ModelVersion) []*pricingv1.ModelPrice {
	out := make([]*pricingv1.ModelPrice, len(vs))
	for i, v := range vs {
		out[i] = v.Proto()
	}
	return out
}

func instancesProto(vs []catalog.InstanceVersion) []*pricingv1.InstancePrice {
	out := make([]*pricingv1.InstancePrice, len(vs))
	for i, v := range vs {
		out[i] = v.Proto()
	}
	return out
}

// ListModelPrices implements PricingService.ListModelPrices.
func (s *Server) ListModelPrices(_ context.Context, req *pricingv1.ListModelPricesRequest) (*pricingv1.ListModelPricesResponse, error) {
	at, err := s.atOrNow("at", req.GetAt())
	if err != nil {
		return nil, err
	}
	c := s.app.Catalog()
	current, upcoming := c.ModelsAt(at)
	return &pricingv1.ListModelPricesResponse{
		Models:         modelsProto(current),
		Scheduled:      modelsProto(upcoming),
		CatalogVersion: c.Version(),
		At:             timestamppb.New(at),
	}, nil
}

// GetModelPrice implements PricingService.GetModelPrice.
func (s *Server) GetModelPrice(_ context.Context, req *pricingv1.GetModelPriceRequest) (*pricingv1.GetModelPriceResponse, error) {
	if err := requireID("model_id", req.GetModelId()); err != nil {
		return nil, err
	}
	at, err := s.atOrNow("at", req.GetAt())
	if err != nil {
		return nil, err
	}
	c := s.app.Catalog()
	v, err := c.Model(req.GetModelId(), at)
	if err != nil {
		return nil, err
	}
	return &pricingv1.GetModelPriceResponse{
		Price:          v.Proto(),
		Scheduled:      modelsProto(c.ScheduledModel(req.GetModelId(), at)),
		CatalogVersion: c.Version(),
	}, nil
}

// ListInstancePrices implements PricingService.ListInstancePrices.
func (s *Server) ListInstancePrices(_ context.Context, req *pricingv1.ListInstancePricesRequest) (*pricingv1.ListInstancePricesResponse, error) {
	at, err := s.atOrNow("at", req.GetAt())
	if err != nil {
		return nil, err
	}
	c := s.app.Catalog()
	current, upcoming := c.InstancesAt(at)
	return &pricingv1.ListInstancePricesResponse{
		Instances:      instancesProto(current),
		Scheduled:      instancesProto(upcoming),
		CatalogVersion: c.Version(),
		At:             timestamppb.New(at),
	}, nil
}

// Quote implements PricingService.Quote.
func (s *Server) Quote(_ context.Context, req *pricingv1.QuoteRequest) (*pricingv1.QuoteResponse, error) {
	if err := requireID("model_id", req.GetModelId()); err != nil {
		return nil, err
	}
	at, err := s.atOrNow("at", req.GetAt())
	if err != nil {
		return nil, err
	}
	usage, err := catalog.ParseUsage(req.GetUsage())
	if err != nil {
		return nil, err
	}
	q, err := s.app.Quote(req.GetModelId(), usage, at)
	if err != nil {
		return nil, err
	}
	return q.Proto(), nil
}

// actor is the subject of the caller's token, recorded with every change.
func actor(ctx context.Context) string {
	claims, _ := auth.FromContext(ctx)
	return claims.Subject
}

// SetModelPrice implements PricingService.SetModelPrice.
func (s *Server) SetModelPrice(ctx context.Context, req *pricingv1.SetModelPriceRequest) (*pricingv1.SetModelPriceResponse, error) {
	change, err := modelChange(req, actor(ctx))
	if err != nil {
		return nil, err
	}
	v, replayed, err := s.app.SetModelPrice(ctx, change)
	if err != nil {
		return nil, err
	}
	return &pricingv1.SetModelPriceResponse{Price: v.Proto(), CatalogVersion: v.CatalogVersion, Replayed: replayed}, nil
}

// SetInstancePrice implements PricingService.SetInstancePrice.
func (s *Server) SetInstancePrice(ctx context.Context, req *pricingv1.SetInstancePriceRequest) (*pricingv1.SetInstancePriceResponse, error) {
	change, err := instanceChange(req, actor(ctx))
	if err != nil {
		return nil, err
	}
	v, replayed, err := s.app.SetInstancePrice(ctx, change)
	if err != nil {
		return nil, err
	}
	return &pricingv1.SetInstancePriceResponse{Price: v.Proto(), CatalogVersion: v.CatalogVersion, Replayed: replayed}, nil
}

// WatchCatalog implements PricingService.WatchCatalog: a snapshot at once when the caller's
// version is older than the current one, then one after every change, and a heartbeat when idle.
func (s *Server) WatchCatalog(req *pricingv1.WatchCatalogRequest, stream grpc.ServerStreamingServer[pricingv1.WatchCatalogResponse]) error {
	known := req.GetKnownCatalogVersion()
	if known < 0 {
		return fmt.Errorf("%w: known_catalog_version must not be negative", pricing.ErrInvalid)
	}
	// The stream's context is also done when the server starts stopping: pkg/server then ends
	// the stream Unavailable, and the client reconnects.
	ctx := stream.Context()
	for {
		wctx, wcancel := context.WithTimeout(ctx, s.heartbeat)
		c, err := s.app.Wait(wctx, known)
		wcancel()
		var msg *pricingv1.WatchCatalogResponse
		switch {
		case err == nil:
			msg = &pricingv1.WatchCatalogResponse{CatalogVersion: c.Version(), Snapshot: s.snapshotOf(c)}
			known = c.Version()
		case ctx.Err() != nil:
			return ctx.Err()
		default:
			msg = &pricingv1.WatchCatalogResponse{CatalogVersion: s.app.Catalog().Version()}
		}
		if err := stream.Send(msg); err != nil {
			return err
		}
	}
}

// snapshotOf returns the wire form of c, converted once per catalog version.
func (s *Server) snapshotOf(c *catalog.Catalog) *pricingv1.CatalogSnapshot {
	if p := s.snapshot.Load(); p != nil && p.GetCatalogVersion() == c.Version() {
		return p
	}
	p := c.Proto()
	s.snapshot.Store(p)
	return p
}
