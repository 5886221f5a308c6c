"""Common-Operations: task orchestration for the e-commerce platform."""

from __future__ import annotations

__version__ = "0.1.0"
