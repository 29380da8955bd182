"""Nightshift: autonomous infrastructure operations scheduled, queued and recorded in PostgreSQL."""

__version__ = "0.1.0"
