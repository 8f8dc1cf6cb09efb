# Wharf: two commands matter. `make run` starts the registry on the embedded default;
# `make test` installs what it needs and runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

TOOLS_BIN := $(CURDIR)/.tools/bin
GO_TOOLS  := crane regctl oras oci-conformance.test oci-conformance-v1.1.test
export PATH := $(TOOLS_BIN):$(PATH)
export GOFLAGS := -buildvcs=false

ADDR     ?= 127.0.0.1:5000
DATA_DIR ?= ./data
AUTH     ?= token
# Keep in step with registry/src/node-flags.ts (a unit test checks).
REGISTRY_NODE_FLAGS := --max-semi-space-size=4 --min-semi-space-size=4 --no-incremental-marking --expose-gc

.PHONY: help install build run test tools system-deps typecheck clean bench

help:
	@echo "make run         start the registry on $(ADDR) with data in $(DATA_DIR) (PGlite + filesystem)"
	@echo "make test        install everything needed and run all tests"
	@echo "make tools       build the pinned third-party Go test tools into .tools/bin"
	@echo "make bench       run the comparison benchmark (QUICK=1 for a smoke run)"
	@echo "make images      build the registry and operator images as OCI layouts in dist/images (no Docker)"
	@echo "make e2e         start the kindless single-node lab (root), run the flows, remove it (docs/lab.md)"
	@echo "make e2e-down    remove a lab left up (E2E_KEEP=1) and everything it changed"
	@echo "make lab         the same flows on a kind cluster (Docker, kind v0.27+); make lab-down deletes it"

node_modules/.install-stamp: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: node_modules/.install-stamp

build: install
	npm run --silent build

typecheck: install
	npx tsc -p tsconfig.test.json

run: build
	node $(REGISTRY_NODE_FLAGS) dist/registry/src/main.js --addr $(ADDR) --data-dir $(DATA_DIR) --auth $(AUTH)

# Debian packages the tests drive as real peers (skopeo, containerd, ...).
system-deps:
	@tools/install-debian-packages.sh

tools: $(addprefix $(TOOLS_BIN)/,$(GO_TOOLS))

$(TOOLS_BIN)/crane: tools/go.mod tools/go.sum
	cd tools && go build -o $@ github.com/google/go-containerregistry/cmd/crane
$(TOOLS_BIN)/regctl: tools/go.mod tools/go.sum
	cd tools && go build -o $@ github.com/regclient/regclient/cmd/regctl
$(TOOLS_BIN)/oras: tools/go.mod tools/go.sum
	cd tools && go build -o $@ oras.land/oras/cmd/oras
$(TOOLS_BIN)/oci-conformance.test: tools/go.mod tools/go.sum
	cd tools && go test -c -o $@ github.com/opencontainers/distribution-spec/conformance
# The conformance suite of the v1.1.0 era, pinned in its own module beside the current one.
$(TOOLS_BIN)/oci-conformance-v1.1.test: tools/conformance-v1.1/go.mod tools/conformance-v1.1/go.sum
	cd tools/conformance-v1.1 && go test -c -o $@ github.com/opencontainers/distribution-spec/conformance

-include operator/operator.mk
-include tools/minio/minio.mk
-include tools/helm/helm.mk
-include tools/cosign/cosign.mk
-include bench/bench.mk
-include e2e/e2e.mk

test: install system-deps tools build typecheck
	npx vitest run

clean:
	rm -rf dist .test-work
