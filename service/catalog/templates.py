"""Templates the service ships: installed at the API's start when absent (never overwritten,
so an admin's later versions and a deactivation stay)."""

from __future__ import annotations

from service.domain.callers import ADMIN_ROLE
from service.domain.tasks import Priority
from service.domain.templates import TemplateContent

#: (id, content): ids are stable, so installing again finds them.
SHIPPED: tuple[tuple[str, TemplateContent], ...] = (
    (
        "nightly-product-export",
        TemplateContent(
            name="Nightly product export",
            description="Every product as CSV, for feeds and reports.",
            category="export",
            task_type="export",
            entity_type="product",
            params={"format": "csv"},
            optional_fields=("format", "gzip", "columns", "filters", "fileName"),
            tags=("nightly", "products"),
            priority=Priority.LOW,
        ),
    ),
    (
        "customer-import-upsert",
        TemplateContent(
            name="Customer import with upsert",
            description="Imports customers from a file; existing customers are updated.",
            category="import",
            task_type="import",
            entity_type="customer",
            params={"mode": "upsert"},
            optional_fields=("format", "delimiter", "validateOnly", "maxErrors", "batchSize"),
            tags=("customers",),
            notification_settings={
                "onCompletion": True,
                "onFailure": True,
                "onCancel": False,
                "onProgress": [],
                "channels": ["inApp"],
                "webhookUrl": None,
                "recipients": [],
                "templateKey": None,
            },
        ),
    ),
    (
        "cleanup-old-tasks",
        TemplateContent(
            name="Clean up old tasks",
            description="Runs the cleanup-old-tasks maintenance job now (admins only).",
            category="maintenance",
            task_type="maintenance",
            entity_type="cleanup-old-tasks",
            role=ADMIN_ROLE,
            tags=("maintenance",),
        ),
    ),
)
