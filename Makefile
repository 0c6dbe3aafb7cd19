# The two set-up commands of the README:
#   make demo   installs what is needed, builds the embedded lab and opens the console on it
#   make test   installs what is needed and runs the whole test suite (it starts the lab itself)
# Both run as root on Debian 12: the lab creates users and runs PostgreSQL, sshd and dockerd.

PYTHON ?= /usr/bin/python3
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := python3 python3-venv postgresql-15 postgresql-client-15 docker.io openssh-server \
	openssh-client rsync busybox-static util-linux procps iproute2 ca-certificates prometheus iptables faketime

.PHONY: demo test system venv lint bench clean

demo: system venv
	$(BIN)/montagu-console demo

# the static checks first (a few seconds), then the suite
test: system venv lint
	$(BIN)/pytest

# System packages from Debian, installed only when one is missing.
system:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# The Python environment from the lock file (hashes checked), on Debian's python3 so the lab's
# barman container can run it through a read-only /usr mount.
venv: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --require-hashes -r requirements.lock
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

# Static checks: ruff (lint and format), mypy (cache in .mypy_cache) and the import contracts.
# Every command runs and the target fails if any of them failed, so one run lists every problem.
LINT_PATHS := montagu_console tests bench
lint: venv
	@status=0; \
	$(BIN)/ruff check $(LINT_PATHS) || status=1; \
	$(BIN)/ruff format --check $(LINT_PATHS) || status=1; \
	$(BIN)/mypy montagu_console || status=1; \
	$(BIN)/lint-imports || status=1; \
	exit $$status

# probe_cost.py brings up the bench lab (a second lab, 1 MB WAL segments), grows it in stages
# and measures at each (2 x 4 windows of 2 minutes per stage): about an hour
bench: system venv
	$(BIN)/montagu-console lab up >/dev/null
	$(BIN)/python bench/check_vs_barman.py
	$(BIN)/python bench/action_overhead.py
	$(BIN)/python bench/tui_startup.py
	$(BIN)/python bench/probe_cost.py --stages 1:500,5:500,5:5000
	$(BIN)/montagu-console lab down --dir "$${MONTAGU_BENCH_LAB_DIR:-/srv/montagu-lab-bench}"  # its ports and disk are not the tests'

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
