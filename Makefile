# tally — credits, metering and billing. `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ROOT    := $(CURDIR)
BIN     := $(ROOT)/bin
export PATH := $(BIN):$(PATH)
export GOFLAGS := -buildvcs=false
export TALLY_BIN_DIR := $(BIN)

# Pinned tool versions (installed into ./bin by `make tools`).
BUF_VERSION            := v1.75.0
PROTOC_GEN_GO_VERSION  := v1.36.12
PROTOC_GEN_GRPC_VERSION:= v1.6.2
GRPC_GATEWAY_VERSION   := v2.33.0
STRIPE_MOCK_VERSION    := v0.203.0
MAILPIT_VERSION        := v1.27.11
GOLANGCI_LINT_VERSION  := v2.15.0
GNOSTIC_VERSION        := v0.7.1
HELM_VERSION           := v3.22.0
PROMTOOL_VERSION       := v0.316.0

MODULES  := pkg $(wildcard services/*) deploy/helm/chartcheck
SERVICES := $(notdir $(wildcard services/*))
GO_PKGS  := ./pkg/... $(addsuffix /...,$(addprefix ./,$(wildcard services/*)))

.PHONY: help
help: ## List the targets.
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

# --- tools ------------------------------------------------------------------------------------
# Each tool is built with `go install` outside the project modules, so it cannot move their deps.
define go-tool
$(BIN)/$(1):
	@mkdir -p $(BIN)
	@echo "installing $(1) $(3)"
	@cd /tmp && GOBIN=$(BIN) GOWORK=off go install $(2)@$(3)
endef
$(eval $(call go-tool,buf,github.com/bufbuild/buf/cmd/buf,$(BUF_VERSION)))
$(eval $(call go-tool,protoc-gen-go,google.golang.org/protobuf/cmd/protoc-gen-go,$(PROTOC_GEN_GO_VERSION)))
$(eval $(call go-tool,protoc-gen-go-grpc,google.golang.org/grpc/cmd/protoc-gen-go-grpc,$(PROTOC_GEN_GRPC_VERSION)))
$(eval $(call go-tool,protoc-gen-grpc-gateway,github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway,$(GRPC_GATEWAY_VERSION)))
$(eval $(call go-tool,protoc-gen-openapi,github.com/google/gnostic/cmd/protoc-gen-openapi,$(GNOSTIC_VERSION)))
$(eval $(call go-tool,grpcurl,github.com/fullstorydev/grpcurl/cmd/grpcurl,v1.9.4))
$(eval $(call go-tool,stripe-mock,github.com/stripe/stripe-mock,$(STRIPE_MOCK_VERSION)))
# mailpit's web UI is built by npm into server/ui/dist and embedded by go build; `go install` skips
# that step (a blank page). So its module source, fetched by the Go toolchain, is copied to a
# temporary directory where npm builds the UI (the module's own lockfile and build script) before
# go build; the binary replaces bin/mailpit in one rename.
$(BIN)/mailpit:
	@mkdir -p $(BIN)
	@echo "building mailpit $(MAILPIT_VERSION) with its web UI (go mod download, npm ci, npm run package, go build)"
	@cd /tmp && GOWORK=off GOFLAGS=-mod=mod go mod download github.com/axllent/mailpit@$(MAILPIT_VERSION)
	@src=$$(mktemp -d) && trap 'chmod -R u+w "$$src" && rm -rf "$$src"' EXIT && \
		cp -R "$$(go env GOMODCACHE)/github.com/axllent/mailpit@$(MAILPIT_VERSION)/." "$$src" && chmod -R u+w "$$src" && \
		cd "$$src" && npm ci --no-audit --no-fund --loglevel=error && npm run package --silent && \
		test -s server/ui/dist/app.js && \
		GOWORK=off CGO_ENABLED=0 go build -ldflags "-s -w -X github.com/axllent/mailpit/config.Version=$(MAILPIT_VERSION)" \
			-o $(BIN)/mailpit.tmp . && mv $(BIN)/mailpit.tmp $(BIN)/mailpit
$(eval $(call go-tool,golangci-lint,github.com/golangci/golangci-lint/v2/cmd/golangci-lint,$(GOLANGCI_LINT_VERSION)))
$(eval $(call go-tool,helm,helm.sh/helm/v3/cmd/helm,$(HELM_VERSION)))
$(eval $(call go-tool,promtool,github.com/prometheus/prometheus/cmd/promtool,$(PROMTOOL_VERSION)))

GEN_TOOLS  := $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc $(BIN)/protoc-gen-grpc-gateway $(BIN)/protoc-gen-openapi
TEST_TOOLS := $(BIN)/stripe-mock $(BIN)/mailpit
RUN_TOOLS  := $(BIN)/mailpit $(BIN)/grpcurl
DEPLOY_TOOLS := $(BIN)/helm
LINT_TOOLS := $(BIN)/buf $(BIN)/golangci-lint $(BIN)/promtool

.PHONY: tools
tools: $(GEN_TOOLS) $(TEST_TOOLS) $(RUN_TOOLS) $(LINT_TOOLS) $(DEPLOY_TOOLS) ## Install the pinned tools into ./bin.

# --- code generation ----------------------------------------------------------------------------
.PHONY: gen
gen: $(GEN_TOOLS) ## Generate Go, gRPC, grpc-gateway and the OpenAPI 3 document from proto/ (offline).
	buf format -w --path proto/tally
	buf lint
	buf generate
	go run ./pkg/cmd/openapi-finish -yaml pkg/gen/openapi/openapi.yaml -json pkg/gen/openapi/openapi.json

.PHONY: check-gen
check-gen: gen ## Fail when the committed generated code differs from `make gen`.
	git diff --exit-code -- pkg/gen proto
	@test -z "$$(git status --porcelain -- pkg/gen proto)" || { git status --porcelain -- pkg/gen proto; exit 1; }

# --- build, run ----------------------------------------------------------------------------------
.PHONY: build
build: web ## Build every service and the dev tools into ./bin, and the console into web/dist.
	@mkdir -p $(BIN)
	go build -o $(BIN)/ ./pkg/cmd/... $(foreach s,$(SERVICES),./services/$(s)/cmd/...)

.PHONY: run
run: build $(RUN_TOOLS) ## Start PostgreSQL, Redis, mailpit and every service locally (Ctrl-C stops all).
	$(BIN)/tally-dev

# --- the console (web/) ----------------------------------------------------------------------------
# npm ci runs again only when a lockfile changed (npm writes node_modules/.package-lock.json).
web/node_modules/.package-lock.json: web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	@touch $@

.PHONY: web
web: web/node_modules/.package-lock.json ## Build the console into web/dist (the gateway serves it); prints the bundle size.
	cd web && npm run build

.PHONY: web-test
web-test: web/node_modules/.package-lock.json ## Console unit tests (Vitest) and the check that the API client matches the OpenAPI document.
	cd web && npx tsc -b && npx vitest run && npm run check-gen

# The browser suite has its own package (Playwright, axe-core) and lockfile; Playwright downloads no
# browser: it drives Debian's /usr/bin/chromium.
E2E_DIR := web/e2e
$(E2E_DIR)/node_modules/.package-lock.json: $(E2E_DIR)/package-lock.json
	cd $(E2E_DIR) && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
	@touch $@

.PHONY: e2e
e2e: build $(RUN_TOOLS) $(E2E_DIR)/node_modules/.package-lock.json ## Browser end-to-end suite: headless Chromium through the help page on a private stack (web/e2e).
	cd $(E2E_DIR) && npx tsc --noEmit && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npx playwright test

.PHONY: token
token: ## Mint a development token: make token ORG=acme ROLE=member EMAIL=ada@acme.test NAME="Ada Lovelace" (or SERVICE=payments).
	@go run ./pkg/cmd/tally-token $(if $(ORG),-org $(ORG)) $(if $(ROLE),-role $(ROLE)) $(if $(EMAIL),-email '$(EMAIL)') $(if $(NAME),-name '$(NAME)') \
		$(if $(SERVICE),-service $(SERVICE),-sub $(or $(SUB),dev-$(or $(ROLE),member)))

# --- quality ------------------------------------------------------------------------------------
.PHONY: test
test: $(TEST_TOOLS) $(DEPLOY_TOOLS) ## Run every test against private PostgreSQL, Redis, mailpit and stripe-mock, the console's, the Helm chart's, then the browser suite.
	$(MAKE) web-test
	$(MAKE) helm-check
	go vet $(GO_PKGS)
	go test -count=1 -timeout 20m $(GO_PKGS)
	$(MAKE) e2e

# The Helm chart (deploy/helm/tally), without a cluster: helm lint with the default and the
# production values, then deploy/helm/chartcheck renders it (default, production, every option
# on) and decodes each object strictly against the Kubernetes API types, checks the policy
# (probes, limits, non-root, secrets, PDBs, network policies, replicas) and the Dockerfile.
CHART := deploy/helm/tally
.PHONY: helm-check
helm-check: $(DEPLOY_TOOLS) ## Lint and render the Helm chart; validate every object and the Dockerfile (no cluster needed).
	helm lint --strict $(CHART)
	helm lint --strict $(CHART) -f $(CHART)/values-production.yaml
	cd deploy/helm/chartcheck && go vet ./... && TALLY_HELM=$(BIN)/helm go test -count=1 ./...

FUZZTIME ?= 30s
# package:target pairs; each target also runs its seed corpus in `make test`.
FUZZ_TARGETS := \
	./services/ledger/internal/ledger:FuzzValidate \
	./services/ledger/internal/grpcapi:FuzzWriteRequests \
	./services/pricing/internal/grpcapi:FuzzPriceChanges \
	./services/payments/internal/grpcapi:FuzzWriteRequests \
	./services/notifications/internal/grpcapi:FuzzWriteRequests \
	./services/instances-metering/internal/grpcapi:FuzzWriteRequests \
	./services/gateway/internal/gateway:FuzzStrictJSON \
	./pkg/server:FuzzRequestCodec \
	./pkg/textcheck:FuzzText \
	./pkg/money:FuzzFromProto

.PHONY: scale-test
scale-test: build $(TEST_TOOLS) ## Replicas on 3 hosts (network namespaces, needs root): host kill, partition, Redis failover, PostgreSQL promotion, ledger shard move (SHORT=1; README: Faults).
	$(BIN)/tally-chaos -bin $(BIN) -hosts 3 $(if $(SHORT),-short) $(if $(SCENARIOS),-scenarios $(SCENARIOS))

.PHONY: chaos
chaos: build $(TEST_TOOLS) ## Fault-injection suite on the real binaries (SHORT=1, SCENARIOS=a,b; README: Faults).
	$(BIN)/tally-chaos -bin $(BIN) $(if $(SHORT),-short) $(if $(SCENARIOS),-scenarios $(SCENARIOS))

.PHONY: fuzz
fuzz: $(TEST_TOOLS) ## Fuzz every write RPC's validation (FUZZTIME=30s each), then the REST API (TALLY_RESTFUZZ_REQUESTS, _DURATION, _SEED).
	@for t in $(FUZZ_TARGETS); do echo "fuzz $$t"; go test "$${t%%:*}" -run '^$$' -fuzz "^$${t##*:}$$" -fuzztime $(FUZZTIME) || exit 1; done
	TALLY_RESTFUZZ_REQUESTS=$${TALLY_RESTFUZZ_REQUESTS:-100000} TALLY_RESTFUZZ_DURATION=$${TALLY_RESTFUZZ_DURATION:-10m} \
		TALLY_RESTFUZZ_SEED=$${TALLY_RESTFUZZ_SEED:-random} \
		go test -count=1 -timeout 30m -v -run '^TestRESTFuzz$$' ./services/gateway/restfuzz

.PHONY: lint
lint: $(LINT_TOOLS) lint-openapi lint-go lint-observability ## go vet, gofmt, buf lint and format, the OpenAPI lint, golangci-lint, the import rules, alert rules and dashboards.
	go vet $(GO_PKGS)
	@out=$$(gofmt -l pkg services | grep -v '^pkg/gen/' || true); test -z "$$out" || { echo "not gofmt-ed:"; echo "$$out"; exit 1; }
	buf lint
	buf format -d --exit-code --path proto/tally

# golangci-lint (.golangci.yml) once per module, failing on any finding, then the spine's import rules
# (pkg/archtest; after fixing a listed violation: go test ./pkg/archtest -run TestImportRules -update).
.PHONY: lint-go
lint-go: $(BIN)/golangci-lint ## golangci-lint over every module and the import rules (pkg/archtest).
	@rc=0; for m in $(MODULES); do echo "golangci-lint $$m"; (cd $$m && $(BIN)/golangci-lint run ./...) || rc=1; done; exit $$rc
	go test -count=1 ./pkg/archtest

# Alert rules and their unit tests (promtool), then the dashboards (JSON, unique panel ids, every
# query parses as PromQL: pkg/obscheck). docs/observability.md.
OBS_DIR := deploy/observability
.PHONY: lint-observability
lint-observability: $(BIN)/promtool ## promtool check + test of the alert rules, and the dashboards' queries.
	promtool check rules $(OBS_DIR)/rules/*.yml
	promtool check config $(OBS_DIR)/prometheus/prometheus.yml
	promtool test rules $(OBS_DIR)/tests/*.yml
	go test -count=1 -run 'Deployed' ./pkg/obscheck

# @redocly/cli is pinned in tools/openapi-lint (package.json + package-lock.json); rules: redocly.yaml.
.PHONY: lint-openapi
lint-openapi: ## Lint the OpenAPI 3 document with @redocly/cli (recommended rules, 0 errors).
	npm ci --prefix tools/openapi-lint --no-audit --no-fund
	cd tools/openapi-lint && npx --no-install redocly lint --config redocly.yaml ../../pkg/gen/openapi/openapi.yaml

.PHONY: bench
bench: ## Load-test the ledger over real gRPC on loopback, its usage summary over 1M charges, then rental charging at a period boundary.
	go run ./services/ledger/cmd/ledger-bench
	go run ./services/ledger/cmd/usage-bench
	go run ./services/instances-metering/cmd/metering-bench

.PHONY: tidy
tidy: ## go mod tidy every module.
	@for m in $(MODULES); do (cd $$m && go mod tidy); done

.PHONY: clean
clean: ## Remove build output (./bin, web/dist) and local data (.data/).
	rm -rf $(BIN) .data web/dist
