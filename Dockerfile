# syntax=docker/dockerfile:1
#
# One image with every tally service (ledger, pricing, payments, instances-metering, notifications,
# gateway) and the web console the gateway serves. One image, not six: the services are built from
# one Go workspace at one commit, so one build, one version tag, one vulnerability scan and one
# SBOM cover them all; the container's command picks the service (the Helm chart sets it:
# `command: ["/usr/local/bin/ledger"]`). The binaries are static (CGO_ENABLED=0) and trimmed.
#
#   docker build -t tally:$(git rev-parse --short HEAD) .
#   docker run --rm tally:… /usr/local/bin/pricing      # (needs DATABASE_URL, TALLY_JWT_SECRET, …)
#
# Base images are pinned by tag; pin them by digest (@sha256:…) in your registry mirror.
# deploy/helm/chartcheck tests this file's structure (no Docker engine exists in CI).

ARG GO_VERSION=1.26.8
ARG NODE_VERSION=20

# --- the console (web/dist) ----------------------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY web/ ./
RUN npm run build

# --- the services -------------------------------------------------------------------------------
FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false
# The workspace (go.work) and every module are bind-mounted, the module and build caches kept
# between builds; only the binaries leave this stage.
RUN --mount=type=bind,target=/src \
    --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    mkdir -p /out && \
    go build -trimpath -ldflags='-s -w' -o /out/ \
      ./services/ledger/cmd/ledger \
      ./services/pricing/cmd/pricing \
      ./services/payments/cmd/payments \
      ./services/instances-metering/cmd/instances-metering \
      ./services/notifications/cmd/notifications \
      ./services/gateway/cmd/gateway

# --- the runtime image ----------------------------------------------------------------------------
# distroless/static: CA certificates, tzdata and /etc/passwd with nonroot (65532); no shell.
FROM gcr.io/distroless/static-debian12:nonroot AS runtime
COPY --from=build /out/ /usr/local/bin/
COPY --from=web /src/web/dist/ /usr/share/tally/console/
ENV TALLY_CONSOLE_DIR=/usr/share/tally/console
USER 65532:65532
EXPOSE 8080 9091 9092 9093 9094 9095
CMD ["/usr/local/bin/gateway"]
