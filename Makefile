# Charla: `make run` starts everything in one process; `make test` runs every test.
# Only Go is needed: buf and the protoc plugins are built from the versions pinned in
# tools/go.mod, and the database is embedded SQLite unless DATABASE_URL says otherwise.

MODULES := proto shared chatsvc profilesvc notifysvc presencesvc edge cmd deploy
SERVICES := chatsvc profilesvc notifysvc presencesvc
BIN     := $(CURDIR)/bin
# The race detector needs cgo (a C compiler); use it whenever one is present.
RACE    ?= $(shell command -v gcc >/dev/null 2>&1 && echo -race)
TESTFLAGS ?=
BENCH   ?= .
# How long `make fuzz` runs each fuzz target.
FUZZTIME ?= 10s

.PHONY: promtool check-rules run test test-e2e-mysql test-apart drill proto proto-check lint staticcheck check-deps bench bench-system soak tools build fuzz web-deps web web-check test-web browser-deps test-browser

# Builds first, saying so (the first build compiles every dependency: minutes), then runs
# the binary itself, so Ctrl-C reaches it directly and it exits 0 after draining.
run:
	@echo "make run: building ./cmd/charla into bin/charla (the first build compiles every dependency and takes a few minutes)..."
	@go build -o $(BIN)/charla ./cmd/charla
	@echo "make run: starting bin/charla; the banner with URLs and demo tokens follows on stdout, logs on stderr"
	@$(BIN)/charla

build:
	@for m in $(MODULES); do (cd $$m && go build ./...) || exit 1; done

test:
	@for m in $(MODULES); do echo "== $$m"; (cd $$m && go test $(RACE) $(TESTFLAGS) ./...) || exit 1; done

# The end-to-end suite again, with the whole system on MySQL (needs MYSQL_TEST_DSN).
test-e2e-mysql:
	cd cmd && E2E_BACKEND=mysql go test $(RACE) $(TESTFLAGS) ./e2e/ ./internal/system/

# The apart drill (cmd/apart): the commands built into bin/apart (bin/apart-race with the
# race detector), two replicas of every service and two edges as processes, on MySQL
# (MYSQL_TEST_DSN) and an embedded NATS; kill -9 of an edge, NATS restart, connection cap.
test-apart:
	cd cmd && CHARLA_APART=1 go test $(RACE) $(TESTFLAGS) -run 'TestKillEdgeResumeRestartNATSCap' -v ./apart/

# The fault drill (cmd/apart, RELIABILITY.md): the same deployment with every process given
# both replicas of each service, MySQL through a TCP fault proxy; under chat load, one at a
# time: kill -9 of a chat replica, a presence replica and an edge; SIGTERM of a replica of
# each service and of an edge; the database refusing, frozen and slow; NATS down; an edge
# cut off from profile. Checks and reports each fault, with every process's goroutines and
# open files against its baseline (go test -v output). About 4-5 minutes; CI runs it.
drill:
	cd cmd && CHARLA_DRILL=1 go test $(RACE) $(TESTFLAGS) -run 'TestDrillFaults' -timeout 15m -v ./apart/

# Runs every fuzz target (func FuzzXxx in a _test.go file of any module) for FUZZTIME each
# (a duration such as 10s, or a count such as 100000x, which CI uses: see .ci/run).
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
		google.golang.org/protobuf/cmd/protoc-gen-go connectrpc.com/connect/cmd/protoc-gen-connect-go \
		honnef.co/go/tools/cmd/staticcheck

# promtool, pinned in its own module (tools/promtool: Prometheus's dependencies stay out of
# the other tools' builds). The first build compiles Prometheus: minutes.
promtool:
	@mkdir -p $(BIN)
	cd tools/promtool && GOWORK=off go build -o $(BIN)/promtool github.com/prometheus/prometheus/cmd/promtool

# The alert rules and the Prometheus configuration of deploy/observability, checked by
# promtool itself (the deploy module's tests check them with the same Go packages too).
check-rules: promtool
	$(BIN)/promtool check rules deploy/observability/alerts.yaml
	$(BIN)/promtool check config --syntax-only deploy/observability/prometheus.yml

proto: tools
	PATH="$(BIN):$$PATH" $(BIN)/buf generate

# Fails when the committed generated code differs from what `make proto` produces.
proto-check: proto
	@git diff --exit-code -- proto/gen || (echo "proto/gen is stale: run make proto and commit" && exit 1)
	@test -z "$$(git status --porcelain -- proto/gen)" || (git status --porcelain -- proto/gen; echo "proto/gen has untracked files: run make proto and commit"; exit 1)

lint: tools check-deps staticcheck
	$(BIN)/buf lint
	$(BIN)/buf format --diff --exit-code
	@for m in $(MODULES); do (cd $$m && go vet ./...) || exit 1; done
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^proto/gen/')); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# staticcheck, at the version pinned in tools/go.mod, over every module (tests included).
staticcheck: tools
	@for m in $(MODULES); do echo "== staticcheck $$m"; (cd $$m && $(BIN)/staticcheck ./...) || exit 1; done

# No production binary links package testing: test helpers live in _test.go files or in
# packages of their own (dbtest, telemetrytest, systemtest) that only tests import. Every
# main package of every module is checked; the importers of testing are named on failure.
# No service imports a database driver (tests included): SQL goes through shared/sqldb,
# whose transaction policy and error classification every store shares.
check-deps:
	@fail=0; for m in $(MODULES); do \
		for p in $$(cd $$m && go list -f '{{if eq .Name "main"}}{{.ImportPath}}{{end}}' ./...); do \
			by=$$(cd $$m && go list -deps -f '{{$$p := .ImportPath}}{{range .Imports}}{{if eq . "testing"}}{{$$p}} {{end}}{{end}}' $$p) || exit 1; \
			if [ -n "$$(echo $$by)" ]; then echo "$$p links package testing, imported by:" $$by; fail=1; fi; \
		done; \
	done; \
	for m in $(SERVICES); do \
		by=$$(cd $$m && go list -deps -test -f '{{$$p := .ImportPath}}{{if .Module}}{{if eq .Module.Path "github.com/charla/charla/'$$m'"}}{{range .Imports}}{{if or (eq . "github.com/go-sql-driver/mysql") (eq . "modernc.org/sqlite")}}{{$$p}} {{end}}{{end}}{{end}}{{end}}' ./...) || exit 1; \
		if [ -n "$$(echo $$by)" ]; then echo "$$m imports a database driver (only shared/sqldb may):" $$by; fail=1; fi; \
	done; exit $$fail

bench:
	@for m in $(MODULES); do echo "== $$m"; (cd $$m && go test -run '^$$' -bench '$(BENCH)' -benchmem ./...) || exit 1; done

# ---- The browser side (web/): Node ≥ 20.19 and npm; `make run` itself needs only Go. ----

# Installs web/'s packages exactly as package-lock.json pins them.
web-deps:
	cd web && npm ci --no-audit --no-fund

# Rebuilds the web app into edge/internal/webapp/dist (committed, embedded by the edge).
web: web-deps
	cd web && npm run build -w @charla/app

# Fails when the committed web app differs from a fresh build, or a package does not type-check.
web-check: web
	cd web && npm run typecheck -w @charla/client -w @charla/browser-tests
	cd web && npm run build -w @charla/client
	@git diff --exit-code -- edge/internal/webapp/dist web/app/src/countries.gen.ts || (echo "the web app build is stale: run make web and commit" && exit 1)
	@test -z "$$(git status --porcelain -- edge/internal/webapp/dist web/app/src/countries.gen.ts)" || (git status --porcelain -- edge/internal/webapp/dist; echo "edge/internal/webapp/dist has untracked files: run make web and commit"; exit 1)

# Unit tests of the SDK and the app (Vitest).
test-web: web-deps
	cd web && npm test -w @charla/client -w @charla/app

# Debian's Chromium for the browser tests (Playwright's own browser download does not work here).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || (apt-get update && apt-get install -y --no-install-recommends chromium)

# The web app in headless Chromium against the one-process system (cmd/charla, DEMO=true).
test-browser: web-deps browser-deps
	@mkdir -p $(BIN)
	go build -o $(BIN)/charla ./cmd/charla
	cd web && CHARLA_BIN=$(BIN)/charla npm test -w @charla/browser-tests

# Measures the whole system with cmd/charla-load and rewrites BENCHMARKS.md: the one-process
# build on SQLite and on MySQL, and the services apart with two edges on MySQL + NATS, each
# beside a raw WebSocket relay measured in the same run (about 15 minutes). QUICK=1 is a
# smoke run of a few minutes; BENCH_TARGETS picks the scenarios and BENCH_MODES the modes
# (overload: twice the max sustainable rate for 30 s, then the recovery). Needs MariaDB on
# 127.0.0.1:3306 and NATS on 127.0.0.1:4222 for mysql and apart.
BENCH_TARGETS ?= sqlite,mysql,apart
BENCH_MODES ?= idle,storm,chat,overload
bench-system:
	@mkdir -p $(BIN)
	go build -o $(BIN)/charla-load ./cmd/charla-load
	$(BIN)/charla-load -targets $(BENCH_TARGETS) -modes $(BENCH_MODES) $(if $(QUICK),-quick) -out BENCHMARKS.md

# The soak (not in CI): 1,000 msg/s for SOAK_DURATION (30m) on the services apart with two
# edges on MySQL + NATS, recipients dropping their connections and resuming all along; fails
# unless every server process's RSS, goroutines and open files stay flat and no message is
# lost, duplicated or out of sequence. The report goes to bin/soak.md (figures in
# RELIABILITY.md, "Soak"). SOAK_TARGETS=sqlite soaks the one-process build instead. Needs
# MariaDB (MYSQL_TEST_DSN, default root@tcp(127.0.0.1:3306)/) and NATS (NATS_TEST_URL,
# default nats://127.0.0.1:4222).
SOAK_DURATION ?= 30m
SOAK_TARGETS ?= apart
soak:
	@mkdir -p $(BIN)
	go build -o $(BIN)/charla-load ./cmd/charla-load
	$(BIN)/charla-load -soak $(SOAK_DURATION) -targets $(SOAK_TARGETS) $(if $(MYSQL_TEST_DSN),-mysql '$(MYSQL_TEST_DSN)') $(if $(NATS_TEST_URL),-nats '$(NATS_TEST_URL)') -out $(BIN)/soak.md
