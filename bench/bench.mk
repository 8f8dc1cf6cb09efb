# `make bench`: the comparison benchmark of issue 6 (see bench/README.md). Included by the
# root Makefile. QUICK=1 runs a smoke pass (small sizes, one short round) in well under
# two minutes once everything is built.
#
# The peers are built from the Go module proxy into .tools/bin, each module separate so
# that their dependency graphs cannot move each other's versions:
#   distribution v3  tools/bench/go.mod
#   zot and zb       tools/zot/go.mod (zot v1.4.3 under its old module path, see there);
#                    containers_image_openpgp keeps containers/image off cgo's gpgme.
#   zot-sync         the same zot with its sync extension (-tags sync), for the proxy-cache
#                    comparison's on-demand sync (`make bench-proxy`).
# nginx and wrk come from Debian (system-deps).
BENCH_TOOLS := $(TOOLS_BIN)/distribution-registry $(TOOLS_BIN)/zot $(TOOLS_BIN)/zot-sync $(TOOLS_BIN)/zb
BENCH_GO_BUILD := CGO_ENABLED=0 go build -trimpath
ZOT_GO_BUILD := $(BENCH_GO_BUILD) -tags containers_image_openpgp

.PHONY: bench-tools
tools: $(BENCH_TOOLS)
bench-tools: $(BENCH_TOOLS)

$(TOOLS_BIN)/distribution-registry: tools/bench/go.mod tools/bench/go.sum
	cd tools/bench && $(BENCH_GO_BUILD) -o $@ github.com/distribution/distribution/v3/cmd/registry
$(TOOLS_BIN)/zot: tools/zot/go.mod tools/zot/go.sum
	cd tools/zot && $(ZOT_GO_BUILD) -o $@ zotregistry.io/zot/cmd/zot
$(TOOLS_BIN)/zot-sync: tools/zot/go.mod tools/zot/go.sum
	cd tools/zot && $(ZOT_GO_BUILD),sync -o $@ zotregistry.io/zot/cmd/zot
$(TOOLS_BIN)/zb: tools/zot/go.mod tools/zot/go.sum
	cd tools/zot && $(ZOT_GO_BUILD) -o $@ zotregistry.io/zot/cmd/zb

bench: system-deps bench-tools build
	node dist/bench/src/main.js $(if $(filter-out 0,$(QUICK)),--quick) $(BENCH_ARGS)
	node dist/bench/src/login-flood.js $(if $(filter-out 0,$(QUICK)),--quick) $(BENCH_LOGIN_ARGS)
	node dist/bench/src/proxy-cache.js $(if $(filter-out 0,$(QUICK)),--quick) $(BENCH_PROXY_ARGS)
	$(MAKE) bench-operator

# The operator at scale (issue 17): 200 namespaces × 5 RobotAccounts on the real control plane of
# the operator tests; BENCH_NAMESPACES, BENCH_ROBOTS, BENCH_IDLE_SECONDS and BENCH_OUT change it.
.PHONY: bench-operator
bench-operator: system-deps kube-tools build
	npx vitest run --config bench/operator/vitest.config.ts

# Only the login-flood study (bench/README.md, "Login flood"): Wharf alone, no peers to build.
.PHONY: bench-login
bench-login: build
	node dist/bench/src/login-flood.js $(if $(filter-out 0,$(QUICK)),--quick) $(BENCH_LOGIN_ARGS)

# Push latency with no webhook, an answering receiver and a hanging one (issue 21, docs/webhooks.md).
.PHONY: bench-webhooks
bench-webhooks: build
	node dist/bench/src/webhook-push-latency.js $(BENCH_WEBHOOK_ARGS)

# Only the proxy-cache comparison (bench/README.md, "Proxy cache"): cold and warm pulls through
# Wharf, distribution 2.8.2 in proxy mode and zot's on-demand sync, against a loopback upstream.
.PHONY: bench-proxy
bench-proxy: system-deps bench-tools build
	node dist/bench/src/proxy-cache.js $(if $(filter-out 0,$(QUICK)),--quick) $(BENCH_PROXY_ARGS)
