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

# The kindless single-node lab (e2e/local, docs/lab.md). Needs root. `make e2e` starts it,
# runs the flows (e2e/flows/run.sh) and removes it again (E2E_KEEP=1 keeps it up);
# `make e2e-down` removes a lab left up, and everything it changed on the machine.
E2E_DEBIAN_PACKAGES := containerd runc docker-registry containernetworking-plugins iptables nftables gcc libc6-dev skopeo jq curl openssl

.PHONY: e2e e2e-up e2e-down e2e-system-deps
e2e-system-deps:
	@missing=$$(for p in $(E2E_DEBIAN_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; done); \
	[ -z "$$missing" ] || { echo "installing Debian packages: $$missing"; SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing </dev/null; }

e2e: e2e-system-deps kube-tools kube-node-tools images
	e2e/local/e2e.sh

e2e-up: e2e-system-deps kube-tools kube-node-tools images
	e2e/local/up.sh && e2e/local/load-images.sh

e2e-down:
	e2e/local/down.sh

# `make lab`: the same flows on a kind cluster, for machines with Docker (e2e/kind, docs/lab.md).
# lab-check comes first, so a machine without Docker or kind learns it before anything builds.
.PHONY: lab lab-check lab-down
lab-check:
	@for tool in docker kind; do command -v $$tool >/dev/null || { echo "make lab: $$tool is missing. make lab runs the flows on kind and needs Docker and kind v0.27+; without them, make e2e runs them on a kindless node (root, Linux). docs/lab.md"; exit 1; }; done

lab: lab-check images $(TOOLS_BIN)/kubectl
	e2e/kind/lab.sh

lab-down:
	kind delete cluster --name wharf-lab
	docker rm -f wharf-lab-upstream >/dev/null 2>&1 || true
	rm -rf .lab
