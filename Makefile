# SMTPGate — `make demo`, `make test`, `make bench`, `make fuzz`. Each installs what it needs first.
SWIFT ?= swift
# Debian's own interpreter: scripts/deps.sh installs the Python test peers for it from Debian packages.
PYTHON ?= /usr/bin/python3
FUZZ_SECONDS ?= 60
DEBUG_BIN := .build/debug/smtpgate
DEBUG_HELPER := .build/debug/smtpgate-helper
RELEASE_BIN := .build/release/smtpgate
# Release builds leave out Swift's run-time exclusivity checks (some 11 % of a session's instructions, most
# of them in SwiftNIO's channel state): the compile-time checks stay, every debug build and test tier keeps
# the run-time ones, and the state they guard is confined to one event loop (README, "Build and install").
RELEASE_FLAGS ?= -Xswiftc -enforce-exclusivity=unchecked
export RELEASE_FLAGS
export PYTHON
export SMTPGATE_BIN := $(CURDIR)/$(DEBUG_BIN)
export HELPER_BIN := $(CURDIR)/$(DEBUG_HELPER)

.PHONY: all deps build release test unit integration e2e demo bench fuzz clean

all: build

deps:
	@scripts/deps.sh

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release $(RELEASE_FLAGS)

# Every tier, quietly: one line per tier (the build first), the output of failures, one line of totals.
test: deps
	@scripts/test.sh

unit: build
	$(SWIFT) test

integration: build
	$(PYTHON) -m pytest -q -p no:cacheprovider Tests/integration

e2e: build
	Tests/e2e/run.sh

demo: build
	demo/demo.sh

fuzz: deps
	fuzz/run.sh $(FUZZ_SECONDS)

bench: release
	SMTPGATE_BIN=$(CURDIR)/$(RELEASE_BIN) bench/run.sh

clean:
	rm -rf .build fuzz/.build bench/policy/.build
