.PHONY: dev test lint bench

dev:  ## run the service in the embedded mode on http://127.0.0.1:8000
	scripts/bootstrap.sh
	.venv/bin/common-ops dev

test:  ## install what the tests need and run them all
	scripts/test.sh

lint:  ## ruff, the import contracts and strict mypy (scripts/test.sh runs them first)
	scripts/bootstrap.sh
	scripts/lint.sh
