# scim-operator: every developer and CI entry point.
#   make run     the product locally (local control plane when no cluster is reachable)
#   make test    every test: unit, envtest suites, e2e, short fuzz, conformance
#   make verify  generated files (CRDs, RBAC, deepcopy, the Helm chart's, the field
#                reference) are fresh, code is formatted and vetted, the tree is clean

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

K8S_VERSION ?= 1.37.2
CONTROLLER_TOOLS_VERSION ?= v0.23.0
KUSTOMIZE_VERSION ?= v5.8.1
NEWMAN_VERSION ?= 6.2.2
IMG ?= scim-operator:dev

# Tools and the control plane are cached outside the repository.
TOOLS_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/scim-operator/bin
CONTROLLER_GEN ?= $(TOOLS_DIR)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
KUSTOMIZE ?= $(TOOLS_DIR)/kustomize-$(KUSTOMIZE_VERSION)
NEWMAN_DIR ?= $(TOOLS_DIR)/newman-$(NEWMAN_VERSION)

# WITH_ASSETS prefixes a recipe line that needs a control plane: it builds kube-apiserver,
# etcd and kubectl (or finds them cached) and exports KUBEBUILDER_ASSETS, in the recipe's own
# shell so that a failed build stops the target with the build's error on the terminal. (A
# $(shell ...) here would swallow the failure and run the tests with an empty
# KUBEBUILDER_ASSETS.) Only targets that need a control plane pay for it.
WITH_ASSETS = KUBEBUILDER_ASSETS=$$(K8S_VERSION=$(K8S_VERSION) hack/controlplane.sh) \
	&& { test -n "$$KUBEBUILDER_ASSETS" || { echo "hack/controlplane.sh printed no directory" >&2; exit 1; }; } \
	&& export KUBEBUILDER_ASSETS &&

# The test processes, and the managers that the e2e specs and conformance start, run
# client-go's cache mutation detector (make test, test-long and test-model; not
# test-faults, whose figures it would inflate as it would make bench's): an informer keeps
# a copy of each object it adds or updates, for 2 to 4 minutes, and panics when the cached
# object no longer matches it. The cache is shared read-only (pages convert the informer's
# own members without a copy), so a write into it would corrupt every later read. It
# checks only recently written objects; TestPagesReadTheCacheSharedAndLeaveIt compares
# older ones itself. client-go reads the variable once, when a process starts. make bench
# does not set it (the detector's copies would inflate the memory rows), but test-e2e's
# toy run of the bench does, so that run's memory rows are inflated.
MUTATION_DETECTOR = KUBE_CACHE_MUTATION_DETECTOR=true

# make fuzz runs every fuzz target for FUZZTIME each (FUZZTIME=5m make fuzz); make test's
# fuzz-short for FUZZTIME_SHORT each, seed corpora included.
FUZZTIME ?= 60s
FUZZTIME_SHORT ?= 10s
# test-model's long budget (make test-e2e runs test/model with its short default: one random
# sequence per backend and the regression seeds).
# make test's short model run uses one fixed seed per backend (CI is reproducible); the
# long target explores new random seeds each run (MODEL_SEED=n replays one).
MODEL_SEED_SHORT ?= 7
MODEL_SEQUENCES ?= 10
MODEL_OPS ?= 40
MODEL_BACKEND ?= both
# test-faults' sizes (make test-e2e runs the same fault specs short). FAULT_USERS users per
# kill/outage/replica spec and FAULT_SECONDS of a failing Docker Hub; FAULTS_* size the IdP
# journeys, token rotation and disable specs. docs/faults.md says what each does and prints.
FAULT_USERS ?= 1000
FAULT_SECONDS ?= 60
FAULTS_USERS ?= 200
FAULTS_GRACE ?= 30s
FAULTS_QUIET ?= 30s
FAULTS_WORKERS ?= 4
GOTEST ?= go test
# The e2e fault specs append their figures here; test-e2e and test-faults print them.
FAULT_FIGURES ?= $(CURDIR)/.dev/fault-figures.txt

.PHONY: all
all: build

##@ Development

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## CRDs and RBAC from the markers.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd webhook paths="./api/..." paths="./controllers/..." paths="./internal/..." paths="./cmd/..." output:crd:artifacts:config=config/crd/bases

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Deepcopy code from the markers.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: helm
helm: manifests ## The Helm chart's generated parts (CRDs, RBAC, alerts, dashboard) from config/.
	go run ./hack/helmgen

.PHONY: docs
docs: manifests ## The field reference docs/reference/<kind>-fields.md from the CRDs.
	go run ./hack/apidocs -crds config/crd/bases -out docs/reference

.PHONY: fmt
fmt:
	go fmt ./...

.PHONY: vet
vet:
	go vet ./...

# The pages `make docs` writes (a git pathspec: hand-written docs/reference pages are not
# generated files).
GENERATED_DOCS = 'docs/reference/*-fields.md'

.PHONY: verify
verify: manifests generate helm docs ## Fail when generated files are stale or code is unformatted.
	@test -z "$$(gofmt -l api controllers cmd internal test hack 2>/dev/null)" || { gofmt -l api controllers cmd internal test hack; echo "gofmt needed"; exit 1; }
	go vet ./...
	hack/verify-api-imports.sh
	hack/verify-gomod.sh
	hack/verify-tree_test.sh >/dev/null
	hack/verify-tree.sh
	go test -count=1 ./hack/testlint/ ./hack/helmgen/ ./hack/apidocs/
	@# the chart's hand-written templates against the kustomize install (no control plane needed)
	go test -count=1 ./test/helm/ -run '^(TestDefaultValuesInstallWhatBuildInstallerShips|TestTLSSourcesInstallWhatTheComponentsDo|TestMonitoringInstallsWhatTheComponentDoes)$$'
	@git diff --exit-code -- config api $(GENERATED_DOCS) || { echo "generated files are stale: run 'make manifests generate helm docs' and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- config api $(GENERATED_DOCS))" || { git status --porcelain -- config api $(GENERATED_DOCS); echo "untracked generated files: commit them"; exit 1; }

##@ Test

.PHONY: controlplane
controlplane: ## Build or reuse kube-apiserver, etcd and kubectl (cached outside the repo).
	@K8S_VERSION=$(K8S_VERSION) hack/controlplane.sh

.PHONY: test
test: verify test-unit test-e2e fuzz-short conformance ## Every test (CI runs this).

.PHONY: test-unit
test-unit: ## Unit and envtest suites (a real kube-apiserver and etcd).
	$(WITH_ASSETS) $(MUTATION_DETECTOR) $(GOTEST) -count=1 -timeout 20m ./api/... ./controllers/... ./internal/... ./cmd/...

.PHONY: test-long
test-long: ## The long suites: 2,000 members through the controllers against the Docker Hub emulator.
	$(WITH_ASSETS) $(MUTATION_DETECTOR) $(GOTEST) -count=1 -timeout 30m ./controllers/... -ginkgo.label-filter=long -ginkgo.v

.PHONY: test-e2e
test-e2e: ## The real manager binary, real HTTP and the built kubectl against a local control plane.
	@mkdir -p .dev && rm -f $(FAULT_FIGURES)
	status=0; $(WITH_ASSETS) $(MUTATION_DETECTOR) MODEL_SEED=$(MODEL_SEED_SHORT) FAULT_FIGURES=$(FAULT_FIGURES) $(GOTEST) -count=1 -timeout 20m ./test/... || status=$$?; \
		echo "figures (per fault spec and IdP journey):"; cat $(FAULT_FIGURES) 2>/dev/null; exit $$status

.PHONY: test-model
test-model: ## The access invariant under long random operation sequences: MODEL_SEQUENCES=10 MODEL_OPS=40 [MODEL_SEED=n]
	$(WITH_ASSETS) $(MUTATION_DETECTOR) MODEL_SEQUENCES=$(MODEL_SEQUENCES) MODEL_OPS=$(MODEL_OPS) MODEL_BACKEND=$(MODEL_BACKEND) \
		$(GOTEST) -count=1 -timeout 180m ./test/model/ -run TestModel -v

.PHONY: test-faults
test-faults: ## The e2e fault specs, long, with figures (docs/faults.md): FAULT_USERS=1000 FAULT_SECONDS=60 FAULTS_USERS=200 FAULTS_GRACE=30s FAULTS_QUIET=30s FAULTS_WORKERS=4
	@mkdir -p .dev && rm -f $(FAULT_FIGURES)
	status=0; $(WITH_ASSETS) FAULT_USERS=$(FAULT_USERS) FAULT_SECONDS=$(FAULT_SECONDS) \
		FAULTS_USERS=$(FAULTS_USERS) FAULTS_GRACE=$(FAULTS_GRACE) FAULTS_QUIET=$(FAULTS_QUIET) FAULTS_WORKERS=$(FAULTS_WORKERS) \
		FAULT_FIGURES=$(FAULT_FIGURES) $(GOTEST) -count=1 -timeout 180m -v ./test/e2e/ -ginkgo.label-filter=faults -ginkgo.v || status=$$?; \
		echo "figures (per fault spec and IdP journey):"; cat $(FAULT_FIGURES) 2>/dev/null; exit $$status

.PHONY: fuzz-short
fuzz-short: ## A short run of every fuzz target, FUZZTIME_SHORT (10s) each (seed corpora live in testdata/fuzz).
	hack/fuzz.sh $(FUZZTIME_SHORT)

.PHONY: fuzz
fuzz: ## Every fuzz target for FUZZTIME each (default 60s): FUZZTIME=5m make fuzz
	hack/fuzz.sh $(FUZZTIME)

.PHONY: conformance
conformance: ## The Microsoft SCIM collection with newman, when ../shared/conformance exists.
	$(WITH_ASSETS) $(MUTATION_DETECTOR) NEWMAN_DIR=$(NEWMAN_DIR) NEWMAN_VERSION=$(NEWMAN_VERSION) hack/conformance.sh

# make bench's flags, e.g. BENCH_ARGS="-sizes 1000,10000,100000 -sync 10000 -hub-sizes 1000,10000"
# (go run ./test/bench -help lists them all).
BENCH_ARGS ?=

.PHONY: bench
bench: ## The product's benchmark (local control plane, manager binary, SCIM over HTTPS): a table, .dev/bench/bench.{json,svg}
	$(WITH_ASSETS) go run ./test/bench $(BENCH_ARGS)

##@ Build and run

.PHONY: build
build: ## The manager and the kubectl plugin into bin/.
	CGO_ENABLED=0 go build -trimpath -o bin/manager ./cmd/manager
	CGO_ENABLED=0 go build -trimpath -o bin/kubectl-scim ./cmd/kubectl-scim

# Where install-plugin puts kubectl-scim: GOBIN, else GOPATH/bin (evaluated only when used).
PLUGIN_DIR ?= $(or $(shell go env GOBIN),$(shell go env GOPATH)/bin)

.PHONY: install-plugin
install-plugin: ## The kubectl plugin on PATH: `kubectl scim ...` (PLUGIN_DIR=dir to choose where).
	CGO_ENABLED=0 go build -trimpath -o bin/kubectl-scim ./cmd/kubectl-scim
	install -d "$(PLUGIN_DIR)"
	install -m 0755 bin/kubectl-scim "$(PLUGIN_DIR)/kubectl-scim"
	@case ":$$PATH:" in *":$(PLUGIN_DIR):"*) echo "installed $(PLUGIN_DIR)/kubectl-scim: try 'kubectl scim members'";; \
		*) echo "installed $(PLUGIN_DIR)/kubectl-scim; $(PLUGIN_DIR) is not on PATH: add it, or run 'make install-plugin PLUGIN_DIR=<a dir on PATH>'";; esac

# make run DOCKERHUB=1 also starts the Docker Hub emulator on 127.0.0.1 and a second sample
# ScimConfig (type dockerhub) pointing at it: docs/try-dockerhub.md. (DOCKERHUB=0 or empty: not.)
DOCKERHUB ?=

.PHONY: run
run: ## The product locally: control plane (if no cluster), CRDs, sample ScimConfig, manager. DOCKERHUB=1: and a Docker Hub emulator.
	go build -o bin/devloop ./hack/devloop
	K8S_VERSION=$(K8S_VERSION) bin/devloop $(if $(filter-out 0 false no,$(DOCKERHUB)),--dockerhub) $(RUN_ARGS)

.PHONY: docker-build
docker-build: ## The container image (needs a Docker engine).
	docker build -t $(IMG) .

.PHONY: build-installer
build-installer: manifests $(KUSTOMIZE) ## One install YAML in dist/install.yaml.
	mkdir -p dist
	cd config/manager && $(KUSTOMIZE) edit set image controller=$(IMG)
	$(KUSTOMIZE) build config/default > dist/install.yaml
	cd config/manager && $(KUSTOMIZE) edit set image controller=controller:latest
	@echo "wrote dist/install.yaml"

.PHONY: deploy
deploy: build-installer ## Apply dist/install.yaml to the current kubeconfig's cluster.
	kubectl apply -f dist/install.yaml

##@ Tools

$(CONTROLLER_GEN):
	mkdir -p $(TOOLS_DIR)
	GOBIN=$(TOOLS_DIR)/.gobin go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	mv $(TOOLS_DIR)/.gobin/controller-gen $@

$(KUSTOMIZE):
	mkdir -p $(TOOLS_DIR)
	GOBIN=$(TOOLS_DIR)/.gobin go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
	mv $(TOOLS_DIR)/.gobin/kustomize $@

.PHONY: help
help:
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  %-16s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
