# cosign v3, the signing client the client guide's offline recipes are tested with
# (docs/clients.md), built from the Go module proxy. Its own module (tools/cosign/go.mod)
# keeps the sigstore dependency graph from moving the versions pinned elsewhere.
# Included by the root Makefile.
tools: $(TOOLS_BIN)/cosign

$(TOOLS_BIN)/cosign: tools/cosign/go.mod tools/cosign/go.sum
	cd tools/cosign && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o $@ github.com/sigstore/cosign/v3/cmd/cosign
