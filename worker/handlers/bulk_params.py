"""Parameters of import and export tasks: defined in the core (service/bulk/params.py), which
checks them when a task is created; the handlers parse them again before any work starts."""

from service.bulk.params import ExportParams, ImportParams, SinkParams, parse

__all__ = ["ExportParams", "ImportParams", "SinkParams", "parse"]
