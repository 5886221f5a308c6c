.PHONY: dev test lint bench

dev:  ## run the service in the embedded mode on http://127.0.0.1:8000
	scripts/bootstrap.sh
	.venv/bin/common-ops dev

test:  ## install what the tests need and run them all
	scripts/test.sh

lint:
	scripts/bootstrap.sh
	.venv/bin/ruff check service worker tests bench
	.venv/bin/ruff format --check service worker
	.venv/bin/mypy
	.venv/bin/lint-imports
