# Beacon: `make run` runs the main job locally, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
GENERATED := beacon/v1

.PHONY: run test chaos bench install browser proto-gen proto-check lint typecheck check clean

run: $(STAMP)
	$(BIN)/beacon local --job examples/bias-audit.yaml

test: $(STAMP) browser
	$(BIN)/pytest -q

# A job of 900 cells while the router fails 20% of calls and hangs 2%, an
# agent is killed twice and the coordinator once; fails if a cell ran twice
# or a receipt was lost.
chaos: $(STAMP)
	$(BIN)/python -m chaos

# The HTML report test renders in headless Chromium (Debian's package).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing chromium for the HTML report test"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium \
			|| { $$SUDO apt-get update && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }; }

# The same cells through Beacon and through a direct call loop on the same
# router: 900 cells at 200 ms, 9,000 at 0 ms, and a 90,000-cell job for the
# coordinator's memory. Reports against the targets; never part of `test`.
bench: $(STAMP)
	$(BIN)/python -m bench

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "Beacon needs Python 3.11 or newer (found $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

proto-gen: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m grpc_tools.protoc -I protos \
		--python_out=. --grpc_python_out=. \
		--mypy_out=. --mypy_grpc_out=. \
		protos/beacon/v1/*.proto

# Fails when the committed stubs differ from what the protos generate.
proto-check: proto-gen
	git diff --exit-code -- $(GENERATED)
	@test -z "$$(git status --porcelain --untracked-files=all -- $(GENERATED))" \
		|| { echo "untracked generated files in $(GENERATED)"; exit 1; }

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy beacon coordinator region_agent local_router chaos bench

check: lint typecheck proto-check test

clean:
	rm -rf $(VENV) .beacon .pytest_cache .mypy_cache .ruff_cache
