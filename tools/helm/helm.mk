# Helm v4, the Helm client the client guide's recipes are tested with (docs/clients.md),
# built from the Go module proxy. Its own module (tools/helm/go.mod) keeps its Kubernetes
# dependency graph from moving the versions pinned in the other tool modules.
# Included by the root Makefile.
tools: $(TOOLS_BIN)/helm

$(TOOLS_BIN)/helm: tools/helm/go.mod tools/helm/go.sum
	cd tools/helm && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o $@ helm.sh/helm/v4/cmd/helm
