# The container image, built without a container engine (tools/image, with
# go-containerregistry): the release binary of vss-server on an empty base, run as an
# unprivileged user. The same commit builds the same image: every time in it is the
# commit's.

IMAGE_ARCH ?= $(shell $(GO) env GOARCH)
IMAGE_TAG  ?= vss-server:$(RELEASE_VERSION)
IMAGE_OUT  ?= bin/vss-server-image-$(IMAGE_ARCH).tar

.PHONY: image
image: ## Build the container image $(IMAGE_OUT) without a container engine (docker load / podman load read it)
	mkdir -p bin/linux-$(IMAGE_ARCH)
	CGO_ENABLED=0 GOOS=linux GOARCH=$(IMAGE_ARCH) $(GO) build -trimpath -buildvcs=false -ldflags '$(RELEASE_LDFLAGS)' \
		-o bin/linux-$(IMAGE_ARCH)/vss-server ./cmd/vss-server
	cd tools && $(GO) run ./image --binary ../bin/linux-$(IMAGE_ARCH)/vss-server --arch $(IMAGE_ARCH) \
		--version $(RELEASE_VERSION) --revision $(RELEASE_COMMIT) --created $(RELEASE_EPOCH) \
		--licenses ../LICENSE,../LICENSE-MIT,../LICENSE-APACHE --tag $(IMAGE_TAG) --out ../$(IMAGE_OUT)

.PHONY: test-image
test-image: ## Build the container image twice (the same bytes), inspect it, run its binary as its user from its extracted layer; validate deploy/compose
	cd tools && $(GO) test -count=1 ./image

CLIENT_TESTS += test-image
