# make test is what CI runs (.ci/run): tools, vet, staticcheck, the whole suite.
GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: all build install deps vet lint test bench fuzz demo clean man

all: build

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/oops ./cmd/oops

install:
	$(GO) install -ldflags "-X main.version=$(VERSION)" ./cmd/oops

# man writes a man page per command into man/ (from the commands
# themselves: they never drift from --help); install with
# cp man/*.1 /usr/local/share/man/man1/.
man:
	VERSION=$(VERSION) $(GO) run ./scripts/genman man

# deps installs what a fresh machine lacks for the tests (moto_server, git).
deps:
	@bash scripts/deps.sh

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

lint: vet
	$(GO) run $(STATICCHECK) ./...

test: deps lint
	$(GO) test -count=1 -timeout 10m ./...

# bench needs the aws CLI, jq, nginx and wrk: scripts/deps.sh bench installs them.
bench:
	@bash scripts/deps.sh bench
	$(GO) test -run '^$$' -bench . -benchtime 1x ./...

# fuzz runs every fuzz target in the repository (found with go test -list
# '^Fuzz', package by package) for FUZZTIME each. Not part of make test.
FUZZTIME ?= 30s
fuzz:
	@GO=$(GO) FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh

# demo: try oops with one command, no cloud, nothing but Go. It works in
# .demo/ on 127.0.0.1 and stops and removes everything when it ends.
demo:
	@GO=$(GO) bash scripts/demo.sh

clean:
	rm -rf bin .demo
