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
    #: an XLSX's shared-string table (its XML), held in memory in about that size
    max_shared_strings_bytes: int = 64 * 1024**2
    #: an XLSX part parsed whole: relationships, the workbook, the stylesheet
    max_xml_part_bytes: int = 8 * 1024**2
    #: blank input (blank lines, empty rows and cells) a compressed upload may unpack to, per
    #: byte of it; legitimate files hold far less (see bench/README.md, "Blank input")
    max_blank_ratio: int = 100
    #: blank input allowed whatever the ratio: an Excel sheet's worth of empty CSV rows
    blank_allowance: int = 16 * 1024**2


DEFAULT_LIMITS = ReadLimits()
