package gateway

import (
	"context"
	"net/http"
	"regexp"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/protobuf/proto"
)

// documentNumberHeader is the header metadata in which payments names an invoice or credit note
// (payments' grpcapi.DocumentNumberHeader).
const documentNumberHeader = "x-tally-document-number"

// safeDocumentName is a document number fit for a file name in a quoted header parameter.
var safeDocumentName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// documentDisposition makes PDF responses (invoices, credit notes) downloads named after their
// document: Content-Disposition: attachment; filename="<number>.pdf". A number that is not a safe
// file name becomes "document.pdf".
func documentDisposition(ctx context.Context, w http.ResponseWriter, m proto.Message) error {
	body, ok := m.(*httpbody.HttpBody)
	if !ok || body.GetContentType() != "application/pdf" {
		return nil
	}
	name := "document"
	if md, ok := runtime.ServerMetadataFromContext(ctx); ok {
		if v := md.HeaderMD.Get(documentNumberHeader); len(v) == 1 && safeDocumentName.MatchString(v[0]) {
			name = v[0]
		}
	}
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.pdf"`)
	return nil
}
