# trailproof — a SAM user's targets. `make run` and `make test` set up what they need themselves.
SHELL := /bin/bash
GO ?= go
BIN := bin/trailproof
# staticcheck runs at this version (make lint, infra/scripts/test.sh).
STATICCHECK_VERSION := v0.8.2
export GOFLAGS ?= -buildvcs=false

.PHONY: all build run test test-go lint bench bench-scale bench-grid clean setup stack-up stack-down

all: build

## build: the trailproof CLI (SAM builds the functions through the build-<LogicalId> targets)
build: $(BIN)

$(BIN): $(shell find cmd internal -name '*.go' -not -name '*_test.go') go.mod go.sum
	$(GO) build -trimpath -o $(BIN) ./cmd/trailproof

## run: one complete correlation of the demo action over the demo corpus, no AWS account needed
run: $(BIN)
	./$(BIN) run --integration examples/demo/integration.json --action examples/demo/action.json \
		--corpus examples/demo/cloudtrail.json

## setup: install the local test stack (npm tools, DynamoDB Local, Lambda RIE); idempotent
setup:
	bash infra/scripts/setup.sh

## test: set up and start the local test stack, run every test, stop the stack
test: setup
	bash infra/scripts/test.sh

## test-go: the Go tests only, against whatever stack is already running
test-go:
	$(GO) test ./...

## lint: go vet, staticcheck, gofmt, cfn-lint on the template, asl-validator on the state machine
lint:
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	@test -z "$$(gofmt -l cmd internal functions)" || (gofmt -l cmd internal functions; exit 1)
	$(MAKE) lint-sam

## bench: correlate vs map and typed-struct decoders; polling schemes vs the guide's window (delayTime 0/5/15) and the lower bound
bench:
	bash infra/scripts/bench.sh

## bench-scale: N = 1, 10, 50 concurrent runs with shared reads vs one shared guide window per integration and the lower bound (JSON lines)
bench-scale:
	bash infra/scripts/bench-scale.sh

## bench-grid: one run's calls (vs the lower bound), recall, verdict latency, CPU and memory for queryTime 5/30/120 x 10/100/1,000 events a minute (JSON lines and a table)
bench-grid:
	bash infra/scripts/bench-grid.sh

## stack-up / stack-down: DynamoDB Local (and the emulator make invoke-<fn> starts) for local work
stack-up:
	bash infra/scripts/dynamodb-local.sh start

stack-down:
	-bash infra/scripts/dynamodb-local.sh stop
	-@if [ -f .stack/emulator.pid ]; then kill $$(cat .stack/emulator.pid) 2>/dev/null; rm -f .stack/emulator.pid; fi

clean:
	rm -rf bin .aws-sam coverage.out

-include infra/sam.mk
