"""Bulk import and export: streaming readers and writers, and one validation schema per entity.

Pure and I/O-light: everything works on binary file objects; no database, no HTTP.
"""
