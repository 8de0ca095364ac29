# The two set-up commands of the README: `make run` and `make test`. Both install what is missing.
SHELL := /bin/bash
BIN := .venv/bin
export UNICO_HOME := $(CURDIR)

.PHONY: run test lint unit e2e deps asterisk check clean bench bench-routing bench-events bench-capacity bench-soak

deps:
	@scripts/bootstrap.sh

asterisk: deps
	@$(BIN)/unico asterisk install
	@$(BIN)/unico asterisk start

## Install what is missing, start Asterisk 22 and the controller; serve calls to 803160 until Ctrl-C.
run: asterisk
	@$(BIN)/unico check .
	@$(BIN)/unico db upgrade
	$(BIN)/unico run

## Install what is missing, then every check and test (lint, types, unit, end-to-end on real Asterisk).
## The tests run in TEST_WORKERS processes (pytest-xdist), each end-to-end worker on its own Asterisk
## instance and ports (tests/e2e/rig.py slots); TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= 2
test: deps lint
	@$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

lint: deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: deps
	$(BIN)/python -m pytest -n $(TEST_WORKERS) tests/unit

e2e: deps
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile tests/e2e

check: deps
	$(BIN)/unico check .

## Assignment latency, Unico's ACD vs Asterisk's app_queue on the same Asterisk (own `bench` instance):
## operator made ready while a caller waits, and caller arriving while the operator is idle.
## Prints p50/p95/p99 and ratios; writes bench/results/. BENCH_ARGS="--iterations 3" for a quick run.
bench: deps
	$(BIN)/python -m bench.assignment_latency $(BENCH_ARGS)

## Routing at scale, no Asterisk: 10,000 operators, 1,000 waiting calls, 10^6 claims by 4 processes.
## Prints decision p50/p95/p99, Redis round trips and double assignments; BENCH_ARGS="--quick" for seconds.
bench-routing: deps
	$(BIN)/python -m bench.routing_scale $(BENCH_ARGS)

## ARI event handling, no Asterisk: a recorded stream of 2,000 IVR calls replayed through the controller
## at 10x its nominal rate and flat out. Prints events/s per core, latency and event-loop stalls.
bench-events: deps
	$(BIN)/python -m bench.event_replay $(BENCH_ARGS)

## Capacity (B3), own `capacity` Asterisk instance: max zero-failure calls/s through the full path (IVR, queue,
## sipp operators) vs a bare Stasis answer+originate+bridge app, interleaved; CPU per call, memory per waiting
## call. ~10 min; writes bench/results/capacity.*. BENCH_ARGS="--quick" for a 2-minute sanity run.
bench-capacity: deps
	$(BIN)/python -m bench.capacity $(BENCH_ARGS)

## Soak (B12): steady traffic at 70% of the last measured capacity (bench/results/capacity.json) for
## SOAK_MINUTES (60); RSS growth and assignment p99 drift; writes bench/results/soak.*.
SOAK_MINUTES ?= 60
bench-soak: deps
	$(BIN)/python -m bench.capacity --soak-minutes $(SOAK_MINUTES) $(BENCH_ARGS)

clean:
	@$(BIN)/unico asterisk stop 2>/dev/null || true
	rm -rf .venv .unico recordings/tts
