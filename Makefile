# Charla: `make run` starts everything in one process; `make test` runs every test.
# Only Go is needed: buf and the protoc plugins are built from the versions pinned in
# tools/go.mod, and the database is embedded SQLite unless DATABASE_URL says otherwise.

MODULES := proto shared chatsvc profilesvc notifysvc presencesvc edge cmd
BIN     := $(CURDIR)/bin
# The race detector needs cgo (a C compiler); use it whenever one is present.
RACE    ?= $(shell command -v gcc >/dev/null 2>&1 && echo -race)
TESTFLAGS ?=
BENCH   ?= .
# How long `make fuzz` runs each fuzz target.
FUZZTIME ?= 10s

.PHONY: run test test-e2e-mysql proto proto-check lint bench tools build fuzz

run:
	go run ./cmd/charla

build:
	@for m in $(MODULES); do (cd $$m && go build ./...) || exit 1; done

test:
	@for m in $(MODULES); do echo "== $$m"; (cd $$m && go test $(RACE) $(TESTFLAGS) ./...) || exit 1; done

# The end-to-end suite again, with the whole system on MySQL (needs MYSQL_TEST_DSN).
test-e2e-mysql:
	cd cmd && E2E_BACKEND=mysql go test $(RACE) $(TESTFLAGS) ./e2e/ ./internal/system/

# Runs every fuzz target (func FuzzXxx in a _test.go file of any module) for FUZZTIME each.
# `make test` already runs their seed corpora (testdata/fuzz) as regression tests; an
# input that fails here is written to that package's testdata/fuzz: commit it with the fix.
fuzz:
	@for f in $$(find $(MODULES) -name '*_test.go' | xargs grep -l '^func Fuzz' | sort); do \
		dir=$$(dirname $$f); mod=$${dir%%/*}; \
		for fn in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
			echo "== $$fn ($$dir, $(FUZZTIME))"; \
			(cd $$mod && go test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) ./$${dir#*/}) || exit 1; \
		done; \
	done

tools:
	@mkdir -p $(BIN)
	cd tools && GOWORK=off go build -o $(BIN)/ github.com/bufbuild/buf/cmd/buf \
		google.golang.org/protobuf/cmd/protoc-gen-go connectrpc.com/connect/cmd/protoc-gen-connect-go

proto: tools
	PATH="$(BIN):$$PATH" $(BIN)/buf generate

# Fails when the committed generated code differs from what `make proto` produces.
proto-check: proto
	@git diff --exit-code -- proto/gen || (echo "proto/gen is stale: run make proto and commit" && exit 1)
	@test -z "$$(git status --porcelain -- proto/gen)" || (git status --porcelain -- proto/gen; echo "proto/gen has untracked files: run make proto and commit"; exit 1)

lint: tools
	$(BIN)/buf lint
	$(BIN)/buf format --diff --exit-code
	@for m in $(MODULES); do (cd $$m && go vet ./...) || exit 1; done
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^proto/gen/')); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

bench:
	@for m in $(MODULES); do echo "== $$m"; (cd $$m && go test -run '^$$' -bench '$(BENCH)' -benchmem ./...) || exit 1; done
