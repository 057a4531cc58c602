# roomcast — see README.md. `make test` is what CI runs (.ci/run).
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -X github.com/roomcast/roomcast/buildinfo.Version=$(VERSION) -X github.com/roomcast/roomcast/buildinfo.Commit=$(COMMIT)
FUZZTIME ?= 20s
LISTEN   ?= 127.0.0.1:4100
export CGO_ENABLED := 1

# Debian packages the tests use: the real tools our code is checked against.
DEB_PACKAGES := gcc libc6-dev git ffmpeg vorbis-tools sox libsox-fmt-all systemd \
	pulseaudio pulseaudio-utils iproute2 avahi-daemon avahi-utils dbus python3-zeroconf \
	dbus-daemon dbus-bin playerctl flac opus-tools mpg123 libopus0


.PHONY: all build run test deps vet fmt-check unit fuzz bench clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ ./cmd/...

# Start roomcastd on its embedded default: broker + receiver in one process,
# serving the demo library and playing its gapless album, listening and
# advertising on loopback only, state under .run/.
run: build
	bin/roomcastd --listen $(LISTEN) --state-dir .run/state --name "$$(hostname) (make run)" \
		--music demo --mdns lo --pair-listen 127.0.0.1:4101 --mpris off \
		--play roomcast:album:25fefb1fd6579e15

# apt_install installs the Debian packages of $(1) that are missing
# (idempotent, quick when everything is present).
define apt_install
	@missing=""; for p in $(1); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

# Install what the tests need on a fresh Debian machine, then fetch Go
# modules.
deps:
	$(call apt_install,$(DEB_PACKAGES))
	$(GO) mod download

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

unit:
	$(GO) test -race -count=1 -timeout 20m ./...

# Every fuzz target for a bounded time (FUZZTIME each).
fuzz:
	bash .ci/fuzz $(FUZZTIME)

test: deps fmt-check vet unit fuzz package-test

# Benchmarks; figures and method are in docs/performance.md. Each line is
# independent; the machine is noisy, so each reports medians of repeats.
bench: deps
	$(GO) test -run '^$$' -bench 'Load' -benchtime 1x -count 3 -timeout 30m ./broker/loadtest/
	$(GO) test -run '^$$' -bench 'Meter' -benchmem -count 5 ./loudness/
	$(GO) test -run '^$$' -bench 'VsFFmpeg' -benchtime 1x ./loudness/
	$(GO) test -run '^$$' -bench 'BenchmarkDecode$$' -benchtime 5x -count 5 ./audio/decode/
	$(GO) test -run '^$$' -bench 'DecodeFormats' -benchtime 1x -count 5 ./audio/decode/
	$(GO) test -run '^$$' -bench . -benchtime 3000x -count 5 ./audio/dsp/
	$(GO) test -run '^$$' -bench Scan -benchtime 1x ./library/
	$(GO) test -run '^$$' -bench AnalyseTrack -benchtime 5x -count 3 ./library/
	$(GO) test -run '^$$' -bench AnalyseFormat -benchtime 3x -count 3 ./library/
	$(GO) test -run '^$$' -bench 'Decode|Pipeline' -benchtime 3x -count 3 -benchmem ./audio/player/

clean:
	rm -rf bin dist .run

# ---- Debian packages (packaging/, see packaging/README.md) ----
# Debian packages the .deb build and its test need: cross gcc for cgo on
# arm64/armhf, help2man for the man pages, lintian, qemu-user for the foreign
# binaries (keep in sync with BUILD_DEBS/TEST_DEBS in packaging/lib.sh).
PACKAGE_DEB_PACKAGES := gcc libc6-dev gcc-aarch64-linux-gnu libc6-dev-arm64-cross \
	gcc-arm-linux-gnueabihf libc6-dev-armhf-cross binutils help2man git \
	lintian qemu-user systemd adduser libopus0
# Debian upstream version of the packages; empty: derived from git by
# packaging/build.sh (1.2.3 on tag v1.2.3, 0.0.0~git<date>.<sha> before any tag).
PKG_VERSION ?=

.PHONY: package-deps package package-test

package-deps:
	$(call apt_install,$(PACKAGE_DEB_PACKAGES))
	$(GO) mod download

# dist/roomcast_<ver>_{amd64,arm64,armhf}.deb and dist/roomcast-broker_<ver>_*.deb
package: package-deps
	GO="$(GO)" COMMIT="$(COMMIT)" PKG_VERSION="$(PKG_VERSION)" bash packaging/build.sh

# Builds, lints, installs the amd64 .debs on this machine (root; purged at the
# end), checks them, and runs the arm64/armhf binaries under qemu-user.
package-test: package-deps
	GO="$(GO)" COMMIT="$(COMMIT)" PKG_VERSION="$(PKG_VERSION)" bash packaging/test.sh
