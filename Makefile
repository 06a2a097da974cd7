# The two commands a newcomer needs: `make demo` and `make test`.
# Each creates .venv and installs what it needs on a fresh machine (Python 3.11+).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test lint check-template check-security check-build build unit e2e clean

# The functions' pins are constraints too: the tests run the exact libraries the
# functions ship, even when a dependency of theirs has a newer release.
PINS := $(wildcard functions/requirements*.txt)

$(STAMP): pyproject.toml $(PINS)
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"'
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[local,dev]" $(addprefix -c ,$(PINS))
	rm -f $(VENV)/.installed-* && touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tryon demo

# Pure and emulator tests spread over both cores. The end-to-end tests mostly wait
# on the emulated provider: two processes, each with its own local stack, take a
# test file at a time (a file's tests share their stack's state).
test: lint check-template check-security check-build
	$(BIN)/pytest -q -n 2 tests/unit tests/emulator
	$(BIN)/pytest -q -n 2 --dist loadfile tests/e2e

lint: $(STAMP)
	$(BIN)/ruff check .

check-template: $(STAMP)
	$(BIN)/cfn-lint template.yaml infra/examples/*.yaml
	SAM_CLI_TELEMETRY=0 $(BIN)/sam validate --lint --region us-east-1 --template template.yaml
	# batch_expansion.asl.json left out: statelint does not know a Distributed Map's
	# ItemReader.ReaderConfig (InputType, CSVHeaderLocation) and refuses it; moto's
	# parser (the local stack) and Step Functions' own validation check it instead.
	$(BIN)/statelint infra/statemachine/tryon_job.asl.json

# checkov in a venv of its own: it pins boto3 exactly (1.35.49), aws-sam-cli another (1.43.108).
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV    := .venv-checkov
CHECKOV_STAMP   := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)

$(CHECKOV_STAMP):
	test -d $(CHECKOV_VENV) || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet "checkov==$(CHECKOV_VERSION)"
	rm -f $(CHECKOV_VENV)/.installed-* && touch $(CHECKOV_STAMP)

# Fails on any finding; each check the template skips says why, on its resource.
check-security: $(CHECKOV_STAMP)
	$(CHECKOV_VENV)/bin/checkov --file template.yaml --framework cloudformation \
		--compact --quiet --skip-download

# `sam build` without Docker: functions/Makefile installs the python3.13 arm64 wheels.
build: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" SAM_CLI_TELEMETRY=0 $(BIN)/sam build

# Three functions built the way `sam build` builds them all (one that decodes images,
# one that does not, the API with Pydantic), and what they ship checked.
check-build: $(STAMP)
	rm -rf .aws-sam/check
	for function in IntakeFunction SubmitFunction ApiFunction; do \
		PATH="$(CURDIR)/$(BIN):$$PATH" SAM_CLI_TELEMETRY=0 $(BIN)/sam build $$function \
			--build-dir .aws-sam/check/$$function-build >/dev/null || exit 1; \
		mv .aws-sam/check/$$function-build/$$function .aws-sam/check/; done
	$(BIN)/python infra/check_build.py .aws-sam/check IntakeFunction SubmitFunction ApiFunction

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) out .aws-sam .pytest_cache .ruff_cache
