package gateway

import (
	"encoding/json"
	"io"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	instancesv1 "github.com/tallyhq/tally/pkg/gen/tally/instances/v1"
	notificationsv1 "github.com/tallyhq/tally/pkg/gen/tally/notifications/v1"
	paymentsv1 "github.com/tallyhq/tally/pkg/gen/tally/payments/v1"
	pricingv1 "github.com/tallyhq/tally/pkg/gen/tally/pricing/v1"
	"github.com/tallyhq/tally/pkg/server"
)

// extraRegistrations lists the routes of the services other than the ledger.
func extraRegistrations(cfg Config) []registration {
	return []registration{
		{name: "pricing", addr: cfg.PricingAddr, register: pricingv1.RegisterPricingServiceHandler},
		{name: "payments", addr: cfg.PaymentsAddr, register: paymentsv1.RegisterPaymentsServiceHandler},
		{name: "notifications", addr: cfg.NotificationsAddr, register: notificationsv1.RegisterNotificationsServiceHandler},
		{name: "instances-metering", addr: cfg.InstancesAddr, register: instancesv1.RegisterInstanceMeteringServiceHandler},
	}
}

// webhookPath is the route of Stripe's deliveries.
const webhookPath = "/v1/webhooks/stripe"

// registerExtraRoutes adds the hand-written routes: the Stripe webhook, which needs the raw body
// and the Stripe-Signature header (the signature, not a bearer token, authenticates it). Its body
// is bounded like every other (HTTPLimits.Handler around the whole gateway).
func registerExtraRoutes(mux *runtime.ServeMux, restErr restErrors, conns map[string]*grpc.ClientConn) error {
	conn, ok := conns["payments"]
	if !ok {
		return nil
	}
	payments := paymentsv1.NewPaymentsServiceClient(conn)
	return mux.HandlePath(http.MethodPost, webhookPath, func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			if server.BodyError(r.Context()) == nil {
				err = status.Error(codes.InvalidArgument, "unreadable body")
			}
			restErr.writeCtx(r.Context(), w, r, err)
			return
		}
		var md runtime.ServerMetadata
		resp, err := payments.HandleStripeWebhook(r.Context(), &paymentsv1.HandleStripeWebhookRequest{
			Payload:   body,
			Signature: r.Header.Get("Stripe-Signature"),
		}, grpc.Header(&md.HeaderMD), grpc.Trailer(&md.TrailerMD))
		if err != nil {
			// InvalidArgument (bad signature, stale event) → 400; Unavailable → 503 so that Stripe
			// retries; anything else not 2xx is retried by Stripe as well.
			restErr.writeCtx(runtime.NewServerMetadataContext(r.Context(), md), w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"eventId": resp.GetEventId(), "outcome": resp.GetOutcome()})
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
