# plexus: every target a newcomer needs. `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
NODE_MODULES := node_modules/.package-lock.json
TSX := node --import tsx
# Runtimes start plugins with a clean environment; this machine's global CA bundle adds ~65 ms
# to every node start, so nothing we run or measure inherits it.
CLEAN_ENV := env -u NODE_EXTRA_CA_CERTS

.PHONY: all deps build test test-host test-vm demo bench typecheck clean clean-vm distclean

all: build

deps: $(NODE_MODULES)
	@bash scripts/install-deps.sh

# A worktree may link node_modules to a shared install: npm ci through the link would empty the
# shared folder under everyone using it (it did, 2026-12-02), so a link is left alone.
$(NODE_MODULES): package.json package-lock.json
	@if [ -L node_modules ]; then \
	  echo "deps: node_modules links to a shared install: npm ci skipped (it would empty the link's target)"; \
	else \
	  npm ci --no-audit --no-fund && touch $@; \
	fi

build: deps
	$(CLEAN_ENV) node scripts/build.mjs

typecheck: $(NODE_MODULES)
	npx tsc -p .

test: build typecheck
	$(CLEAN_ENV) bash scripts/test.sh

# The host suite alone: no qemu, no .vm/ download, a few minutes instead of ~10.
test-host: build typecheck
	$(CLEAN_ENV) PLEXUS_SKIP_VM=1 bash scripts/test.sh

test-vm: build
	bash scripts/vm/run.sh

demo: build
	$(CLEAN_ENV) $(TSX) scripts/demo.ts

bench: build
	$(CLEAN_ENV) $(TSX) bench/run.ts

clean:
	rm -rf dist build

# The VM suite's cache (kernel, initramfs, tsx cache: ~441 MB), fetched again on the next test-vm.
clean-vm:
	rm -rf .vm

# Back to a fresh clone's state (npm ci runs again on the next build).
distclean: clean clean-vm
	rm -rf node_modules
