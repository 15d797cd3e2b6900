.PHONY: setup demo test lint schema bench

setup:            ## create .venv and install everything
	scripts/setup.sh

demo: setup       ## load the seed catalog, run a small campaign, serve the UI on http://127.0.0.1:8000 (Ctrl-C stops all)
	.venv/bin/python scripts/quickstart.py

test:             ## run the whole test suite (real PostgreSQL, real Redis, real Celery worker)
	scripts/test.sh

lint:
	.venv/bin/ruff check .
	.venv/bin/lint-imports

schema:           ## write the REST API's OpenAPI schema to docs/openapi.yaml (the contract tests/api/test_schema_contract.py checks)
	.venv/bin/python manage.py spectacular --file docs/openapi.yaml --validate --fail-on-warn

bench: setup      ## run every benchmark; results in benchmarks/results/
	.venv/bin/python benchmarks/run_all.py
