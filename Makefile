.PHONY: dev test bench
# Serve the API locally (DynamoDB Local + SQS + cargo lambda watch) with a demo tenant, key and entitlement.
dev:
	bash scripts/dev.sh
# Run every test: unit, integration on DynamoDB Local, template checks, vendor SDK compatibility.
test:
	bash scripts/test.sh
# Measure performance (round trips, overhead, cold start, sizes, ledger, hot entitlement) into bench/REPORT.md.
bench:
	bash scripts/bench.sh
