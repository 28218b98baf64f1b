# vmm — build, test guests, tests, benchmarks.
#   make demo   boot Linux with a shell on this terminal (Ctrl-A x quits)
#   make test   install what is missing, build everything, run every test
#   make bench  vmm and QEMU side by side on the test guest
#   make fuzz   run each fuzz target for FUZZTIME

GO        ?= go
BUILD     := build
VMM       := $(BUILD)/vmm
GUEST     := tests/guest/build/guest.elf
DEBIAN    := $(BUILD)/debian
LINUX     := $(BUILD)/linux
FUZZTIME  ?= 20s
DURATION  ?= 10m
export CGO_ENABLED := 0

.PHONY: test-stock all vmm guest guest-linux deps kernels stock-initrds stock-rootfs nested demo test vet unit race bench fuzz soak clean

all: vmm guest

# VERSION names the build in `vmm version` (git describe: the commit, and
# -dirty for uncommitted changes), since GOFLAGS=-buildvcs=false leaves
# no version control stamp in the binary; empty outside a git checkout.
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null)
vmm:
	$(GO) build -ldflags "-X main.buildVersion=$(VERSION)" -o $(VMM) ./cmd/vmm

guest:
	$(MAKE) -C tests/guest

# deps installs the host packages the build and tests use, only when one
# is missing (apt-get needs root, as on our hosts and in CI).
DEB_PKGS := gcc binutils make qemu-system-x86 xz-utils zstd socat acpica-tools
deps:
	@missing=""; for p in $(DEB_PKGS); do \
		dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	$(GO) mod download

# guest-linux builds the Linux test kernel (tinyconfig + our fragment and
# patches, cached by source version and inputs) and the Go init's initrd.
guest-linux: deps
	tests/guest/linux/build.sh $(LINUX)
	$(GO) run ./tests/guest/linux/mkinitrd -o $(LINUX)/initrd.cpio

# kernels fetches Debian's stock kernels: the generic bzImage and its PVH
# vmlinux for the loader tests (build/debian), and the cloud kernel with
# its virtio modules (build/debian-cloud); cached.
kernels: deps
	tests/kernels/fetch-debian.sh $(BUILD)

# stock-initrds packs the Go init and each stock kernel's virtio modules
# (in load order; tests/stock_test.go names the same list) into
# build/debian/initrd.cpio and build/debian-cloud/initrd.cpio.
STOCK_MODULES := virtio_ring,virtio,virtio_pci_modern_dev,virtio_pci_legacy_dev,virtio_pci,virtio_mmio,virtio_console
stock-initrds: kernels
	for d in $(DEBIAN) $(BUILD)/debian-cloud; do \
		$(GO) run ./tests/guest/linux/mkinitrd -o $$d/initrd.cpio -modules $$d/modules -module-list $(STOCK_MODULES) || exit 1; done

# stock-rootfs builds the stock kernels' userland: busybox-static, each
# kernel's virtio modules and Debian's qemu-guest-agent, in
# build/stock/shell-{cloud,generic,test}.cpio (tests/stock/README.md).
stock-rootfs: deps kernels
	GO=$(GO) tests/stock/build.sh $(BUILD)

# nested prepares the nested-KVM rig (tests/nested): the outer machine's
# initramfs from Debian's generic kernel modules and busybox-static.
# Run a command there by hand with: go run ./tests/nested/rig -- COMMAND
nested: kernels
	$(GO) run ./tests/nested/rig -prepare

# demo boots Linux on this terminal: a busybox shell on COM1 (Ctrl-A x
# quits) and a virtio-serial port named org.vmm.demo on the unix socket
# build/demo.sock, after printing how to reach it with socat.
# tests/demo.sh (which TestDemo runs too) picks the kernel with the
# tests' CPL0 check: the Linux test kernel where KVM emulates guest
# kernel mode, Debian's cloud kernel where it is native;
# DEMO_KERNEL=test or DEMO_KERNEL=stock forces one.
DEMO_KERNEL ?= auto
demo: deps vmm guest guest-linux stock-rootfs
	VMM=$(VMM) BUILD=$(BUILD) GUEST=$(GUEST) DEMO_KERNEL=$(DEMO_KERNEL) tests/demo.sh

vet:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi

unit:
	$(GO) test -count=1 ./kvm/ ./machine/ ./devices/... ./chardev/ ./boot/ ./cmd/... ./qmp/ ./snapshot/

# race: the unit packages under the race detector (which needs cgo).
RACE_PKGS := ./devices/... ./chardev/ ./machine/ ./soak/ ./cmd/... ./qmp/ ./snapshot/
race:
	CGO_ENABLED=1 $(GO) test -race -count=1 $(RACE_PKGS)

# The end-to-end package runs with -v: each test's time and log are in
# the output, passed or not.
test: deps kernels stock-initrds stock-rootfs nested guest-linux vet vmm guest
	$(MAKE) race
	VMM_DEBIAN_KERNEL_DIR=$(CURDIR)/$(DEBIAN) VMM_GUEST=$(CURDIR)/$(GUEST) VMM_BIN=$(CURDIR)/$(VMM) \
	VMM_LINUX_DIR=$(CURDIR)/$(LINUX) \
		sh -c 'status=0; \
		$(GO) test -count=1 -timeout 60m $$($(GO) list ./... | grep -v "^vmm/tests$$") || status=1; \
		$(GO) test -count=1 -timeout 70m -v ./tests/ || status=1; exit $$status'

# test-stock runs only the stock-kernel tests (part of make test), in
# the nested rig on hosts whose KVM emulates guest kernel mode.
test-stock: deps kernels stock-initrds stock-rootfs nested vmm guest
	VMM_BIN=$(CURDIR)/$(VMM) VMM_GUEST=$(CURDIR)/$(GUEST) \
		$(GO) test -count=1 -timeout 60m -run '^(TestStock|TestNestedRig)' -v ./tests/

bench: deps vmm guest guest-linux stock-initrds nested
	$(GO) run ./tests/bench -vmm $(VMM) -guest $(GUEST) -linux $(LINUX) -stock $(BUILD)/debian-cloud -out $(BUILD)/bench.txt

# soak: every port both ways for DURATION under a seeded chaos schedule
# (slow and paused readers, reconnects, killed peers, a pipe without a
# reader, a pty peer that comes and goes); report in build/soak.
soak: deps vmm guest
	$(VMM) soak --duration $(DURATION) --out $(BUILD)/soak --guest $(GUEST)

# Every target that parses guest- or file-controlled data, FUZZTIME each.
FUZZ_TARGETS := ./boot/:FuzzLoad ./devices/virtio/:FuzzQueuePop ./devices/virtio/:FuzzMMIOAccess \
	./devices/virtioserial/:FuzzControlMessages ./qmp/:FuzzInput \
	./snapshot/:FuzzDecodeState ./devices/virtio/:FuzzTransportState ./devices/virtioserial/:FuzzDecodeState
fuzz:
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name for $(FUZZTIME)"; \
		$(GO) test $$pkg -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) || exit 1; done

clean:
	rm -rf $(BUILD)
	$(MAKE) -C tests/guest clean
