# SMTPGate — `make demo`, `make test`, `make bench`. Each installs what it needs first.
SWIFT ?= swift
PYTHON ?= python3
DEBUG_BIN := .build/debug/smtpgate
DEBUG_HELPER := .build/debug/smtpgate-helper
RELEASE_BIN := .build/release/smtpgate

.PHONY: all deps build release test unit integration e2e demo bench clean

all: build

deps:
	@scripts/deps.sh

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

unit: build
	$(SWIFT) test

integration: build
	SMTPGATE_BIN=$(CURDIR)/$(DEBUG_BIN) $(PYTHON) -m pytest -q -p no:cacheprovider Tests/integration

e2e: build
	@if [ -x Tests/e2e/run.sh ]; then Tests/e2e/run.sh; else echo "e2e: no lab scenarios yet"; fi

test: unit integration e2e

demo: build
	SMTPGATE_BIN=$(CURDIR)/$(DEBUG_BIN) HELPER_BIN=$(CURDIR)/$(DEBUG_HELPER) demo/demo.sh

bench: release
	SMTPGATE_BIN=$(CURDIR)/$(RELEASE_BIN) bench/run.sh

clean:
	rm -rf .build
