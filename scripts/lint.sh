#!/usr/bin/env bash
# The static checks, run by `make lint` and first by the README's test command (scripts/test.sh):
# ruff (lint and format), the import-layer contracts, strict mypy. Any finding fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check service worker tests bench
.venv/bin/ruff format --check service worker tests bench
.venv/bin/lint-imports
.venv/bin/mypy
