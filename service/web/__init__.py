"""The HTTP edge both apps serve: problem answers, the caller, health, the shared lifespan.

Below `service.api` and `worker`, so the worker never imports the API (import-linter).
"""
