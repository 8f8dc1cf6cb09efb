# The end-to-end lab, included by the root Makefile: `make images`, `make e2e`, `make e2e-down`.
# docs/lab.md describes it.
#
# The node tools build from the same k8s.io/kubernetes module as the control plane (tools/kube).
# Built with the module's version stamped in, so that `kubectl get nodes` shows a real version.
KUBE_VERSION := $(shell awk '$$1 == "k8s.io/kubernetes" && $$2 ~ /^v/ { print $$2 }' tools/kube/go.mod)
KUBE_NODE_TOOLS := $(TOOLS_BIN)/kubelet $(TOOLS_BIN)/kube-scheduler $(TOOLS_BIN)/kube-proxy
KUBE_NODE_GO_BUILD := CGO_ENABLED=0 go build -trimpath \
  -ldflags='-s -w -X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(word 2,$(subst ., ,$(KUBE_VERSION)))'

.PHONY: kube-node-tools
kube-node-tools: $(KUBE_NODE_TOOLS)

$(TOOLS_BIN)/kubelet: tools/kube/go.mod tools/kube/go.sum
	cd tools/kube && $(KUBE_NODE_GO_BUILD) -o $@ k8s.io/kubernetes/cmd/kubelet
$(TOOLS_BIN)/kube-scheduler: tools/kube/go.mod tools/kube/go.sum
	cd tools/kube && $(KUBE_NODE_GO_BUILD) -o $@ k8s.io/kubernetes/cmd/kube-scheduler
$(TOOLS_BIN)/kube-proxy: tools/kube/go.mod tools/kube/go.sum
	cd tools/kube && $(KUBE_NODE_GO_BUILD) -o $@ k8s.io/kubernetes/cmd/kube-proxy

# OCI image layouts of the registry and the operator in dist/images/, without a Docker engine
# (e2e/src/images). Downloads and layers are cached in .tools/images by their inputs.
.PHONY: images
images: build
	node dist/e2e/src/images/main.js
