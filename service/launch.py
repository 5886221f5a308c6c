"""The `common-ops` command's entry point: starts with the garbage collector off.

Start-up makes hundreds of thousands of objects that live as long as the process (modules,
classes, tables, the app), so the collections its allocations trigger find nothing to free and
cost ~10 % of a server's start-up (measured: the worker's imports 0.90 to 0.98 s with collection,
0.83 to 0.85 s without). Collection resumes once the app is built (`service.cli._serve`), and at
once for the commands that do not serve (`service.cli.resume_collection`).
"""

from __future__ import annotations

import gc


def main() -> None:
    gc.disable()
    from service.cli import main as run

    run()
