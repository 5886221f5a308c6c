"""register_all: the one place handlers are listed."""

from __future__ import annotations

from worker.handlers import diagnostics, exports, imports, maintenance, notification_batch
from worker.registry import HandlerRegistry


def register_all(registry: HandlerRegistry) -> HandlerRegistry:
    """Register every handler; a catalog type left without one stops the worker at start."""
    diagnostics.register(registry)
    maintenance.register(registry)
    imports.register(registry)
    exports.register(registry)
    notification_batch.register(registry)
    missing = registry.missing()
    if missing:
        raise RuntimeError(f"task types without a handler: {', '.join(missing)}")
    return registry
