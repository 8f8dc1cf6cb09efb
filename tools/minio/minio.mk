# MinIO, the S3 server the registry's S3 tests run against, built from the Go module
# proxy. It has its own module (tools/minio/go.mod) so that its large dependency graph
# cannot move the versions pinned in tools/go.mod. Included by the root Makefile.
tools: $(TOOLS_BIN)/minio

$(TOOLS_BIN)/minio: tools/minio/go.mod tools/minio/go.sum
	cd tools/minio && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o $@ github.com/minio/minio
