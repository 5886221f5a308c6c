"""Limits that keep a hostile or broken upload from exhausting memory or time."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """Bounds a reader enforces; a row over a per-row bound becomes a row error."""

    max_columns: int = 512  #: header columns (CSV, XLSX) or keys of a JSON object
    max_cell_chars: int = 32_767  #: Excel's own cell limit
    max_line_chars: int = 1_048_576  #: one line; CSV counts UTF-8 bytes and fails the file
    max_decompressed_bytes: int = 4 * 1024**3  #: gzip bomb guard, and the XLSX unzipped size
    max_shared_strings_bytes: int = 64 * 1024**2  #: openpyxl holds an XLSX's string table in memory


DEFAULT_LIMITS = ReadLimits()
