# infra/sam.mk: the serverless path's make targets; the top Makefile includes it.
#
#   build-<LogicalId>   what `sam build` runs for each function (Metadata: BuildMethod: makefile):
#                       a linux/arm64 static bootstrap in $(ARTIFACTS_DIR)
#   invoke-<fn>         builds <fn> for this machine and runs it under AWS's Lambda Runtime
#                       Interface Emulator with events/<fn>/$(EVENT).json (as `sam local invoke`)
#   lint-template       cfn-lint template.yaml
#   lint-asl            asl-validator on the state machine definition
#   lint-sam            both
#   test-sfn            the Step Functions and template tests (needs `npm ci`)
#   deploy              sam build && sam deploy (samconfig.toml; --guided the first time)

SAM_FUNCTIONS := begin fetch correlate alerts fail api ingest
SAM_GOFLAGS   := -tags lambda.norpc -trimpath -ldflags='-s -w'
CFN_LINT      ?= cfn-lint
SAM           ?= sam
EVENT         ?= main
RIE_PORT      ?= 8080
RIE_DIR       ?= .stack/rie

# build-BeginFunction etc.: sam build calls these with ARTIFACTS_DIR set.
define sam_build_target
.PHONY: build-$(1)
build-$(1):
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build $$(SAM_GOFLAGS) -o $$(ARTIFACTS_DIR)/bootstrap ./functions/$(2)
endef
$(eval $(call sam_build_target,BeginFunction,begin))
$(eval $(call sam_build_target,FetchFunction,fetch))
$(eval $(call sam_build_target,CorrelateFunction,correlate))
$(eval $(call sam_build_target,AlertsFunction,alerts))
$(eval $(call sam_build_target,FailFunction,fail))
$(eval $(call sam_build_target,ApiFunction,api))
$(eval $(call sam_build_target,IngestFunction,ingest))

# invoke-<fn>: the function's bootstrap for this machine under the Runtime Interface Emulator with
# events/<fn>/$(EVENT).json. Without TABLE_NAME in the environment it prepares a local stack first
# (DynamoDB Local, a CloudTrail emulator of the demo corpus, the demo integration and run); see
# infra/scripts/invoke-local.sh.
define sam_invoke_target
.PHONY: invoke-$(1)
invoke-$(1):
	RIE_PORT=$$(RIE_PORT) bash infra/scripts/invoke-local.sh $(1) $$(EVENT)
endef
$(foreach fn,$(SAM_FUNCTIONS),$(eval $(call sam_invoke_target,$(fn))))

.PHONY: lint-template lint-asl lint-sam test-sfn deploy
lint-template:
	$(CFN_LINT) template.yaml

lint-asl: node_modules/.package-lock.json
	npx --no-install asl-validator --json-path statemachine/correlation.asl.json

lint-sam: lint-template lint-asl

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

test-sfn: node_modules/.package-lock.json
	go test ./internal/sfntest/... ./internal/lambdafn/...

deploy:
	$(SAM) build
	$(SAM) deploy
