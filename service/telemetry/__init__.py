"""Metrics and traces: what the service tells operators about itself (no I/O of its own)."""
