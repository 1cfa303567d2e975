"""healthd: debounced health checks for data sources, written to one PostgreSQL table."""

from __future__ import annotations

__version__ = "0.1.0"
