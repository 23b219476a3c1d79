package grpcapi

import (
	"google.golang.org/grpc/codes"

	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/services/notifications/internal/notify"
)

// Errors maps the notifications errors to gRPC statuses. server.CommonErrors follows: ids and
// text checks, money, and the ledger's errors (an outage is Unavailable, a malformed reply
// Internal); anything else is Internal, logged once and masked.
var Errors = server.ErrorTable{
	{Is: notify.ErrInvalid, Code: codes.InvalidArgument},
	{Is: notify.ErrPermissionDenied, Code: codes.PermissionDenied},
	{Is: notify.ErrNotFound, Code: codes.NotFound},
}
