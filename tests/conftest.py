"""Shared fixtures: a clean environment, both databases, settings, resources, clients."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from _pytest.nodeid import NodeId

for _name in [n for n in os.environ if n.startswith("OPS_") and not n.startswith("OPS_TEST_")]:
    del os.environ[_name]  # the suite decides every setting itself

pytest_plugins = ["tests.fixtures.database", "tests.fixtures.s3", "tests.fixtures.app"]


#: Tests that must not share the machine with each other run on one pytest-xdist worker, one
#: after another (`--dist loadgroup`, scripts/test.sh). The browser tests share one chromium per
#: worker (a session fixture, ~300 MB and a core while it renders): one group keeps it to one.
SERIAL_GROUPS = {"browser": Path(__file__).parent / "browser"}


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> Iterator[None]:
    for item in items:  # before every other implementation, xdist's included
        for group, folder in SERIAL_GROUPS.items():
            if item.path.is_relative_to(folder):
                item.add_marker(pytest.mark.xdist_group(group))
    yield
    # pytest-xdist (3.8) groups a test by appending "@group" to `item._nodeid`, which pytest 9.2's
    # nodes no longer read (their id is `_id`, a NodeId): without this, every xdist_group is
    # silently ignored and grouped tests run on several workers at once.
    for item in items:
        renamed = item.__dict__.get("_nodeid")
        if isinstance(renamed, str) and renamed != item.nodeid:
            item._id = NodeId.parse(renamed)
