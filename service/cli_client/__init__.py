"""`common-ops tasks|import|export|schedules|templates`: a client of the REST API only.

It never imports the service's use cases or database (an import-linter contract says so): it
speaks HTTP to `--api`, as any other client would.
"""
