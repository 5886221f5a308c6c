"""register_all: the one place handlers are listed."""

from __future__ import annotations

from worker.handlers import diagnostics, exports, imports, maintenance
from worker.registry import HandlerRegistry


def register_all(registry: HandlerRegistry) -> HandlerRegistry:
    diagnostics.register(registry)
    maintenance.register(registry)
    imports.register(registry)
    exports.register(registry)
    return registry
