# Operator make targets, included by the root Makefile.
#
# The operator tests run a real control plane (etcd, kube-apiserver, kube-controller-manager),
# built from the Go module proxy: tools/kube/go.mod requires k8s.io/kubernetes and replaces its
# staging modules with their published versions (tools/kube/gen-go-mod.sh), tools/etcd/go.mod
# requires etcd's server module. kubectl is built too, to test `kubectl apply -k config/default`.
# Binaries are cached in .tools/bin by file timestamps.
KUBE_TOOLS := $(TOOLS_BIN)/kube-apiserver $(TOOLS_BIN)/kube-controller-manager $(TOOLS_BIN)/kubectl $(TOOLS_BIN)/etcd
KUBE_GO_BUILD := CGO_ENABLED=0 go build -trimpath -ldflags='-s -w'

.PHONY: kube-tools crds operator-build operator-test

tools: $(KUBE_TOOLS)
kube-tools: $(KUBE_TOOLS)

$(TOOLS_BIN)/kube-apiserver: tools/kube/go.mod tools/kube/go.sum
	cd tools/kube && $(KUBE_GO_BUILD) -o $@ k8s.io/kubernetes/cmd/kube-apiserver
$(TOOLS_BIN)/kube-controller-manager: tools/kube/go.mod tools/kube/go.sum
	cd tools/kube && $(KUBE_GO_BUILD) -o $@ k8s.io/kubernetes/cmd/kube-controller-manager
$(TOOLS_BIN)/kubectl: tools/kube/go.mod tools/kube/go.sum
	cd tools/kube && $(KUBE_GO_BUILD) -o $@ k8s.io/kubernetes/cmd/kubectl
$(TOOLS_BIN)/etcd: tools/etcd/go.mod tools/etcd/go.sum
	cd tools/etcd && $(KUBE_GO_BUILD) -o $@ go.etcd.io/etcd/server/v3

operator-build: install
	npx tsc -p operator/tsconfig.json

# Regenerates crds/*.yaml from the TypeBox schemas in operator/src/api.
crds: operator-build
	node dist/operator/src/gen-crds.js crds

operator-test: install kube-tools
	npx vitest run --project operator

# Test peers from Debian: lua5.1 runs the Argo CD health check (Argo CD embeds a Lua 5.1), and
# openssl makes the control plane's test certificates.
.PHONY: operator-system-deps
system-deps: operator-system-deps
operator-system-deps:
	@command -v lua5.1 >/dev/null && command -v openssl >/dev/null || { \
	  echo "installing Debian packages: lua5.1 openssl"; \
	  SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends lua5.1 openssl </dev/null; }

# Regenerates the management API's OpenAPI document and the operator's client types from it.
.PHONY: api-client
# tsc may fail on the operator while its types are stale; the registry's emitted code is all this needs.
api-client: install
	-npx tsc -p tsconfig.json
	rm -rf dist/registry/src/metadata/migrations && cp -r registry/src/metadata/migrations dist/registry/src/metadata/migrations
	node dist/registry/src/openapi-document.js registry/openapi.json
	node dist/operator/src/registry-client/generate-types.js registry/openapi.json operator/src/registry-client/schema.ts
