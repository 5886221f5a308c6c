"""Shared fixtures: a clean environment, both databases, settings, resources, clients."""

from __future__ import annotations

import os

for _name in [n for n in os.environ if n.startswith("OPS_") and not n.startswith("OPS_TEST_")]:
    del os.environ[_name]  # the suite decides every setting itself

pytest_plugins = ["tests.fixtures.database", "tests.fixtures.s3", "tests.fixtures.app"]
