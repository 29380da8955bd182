"""Refusals: every bad request ends as one JSON error, with a status and a metric reason."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse


class Refusal(Exception):
    """Raised by a handler; the app answers `status` with {"error": message, **extra}."""

    def __init__(self, status: int, reason: str, message: str, *, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason  # the metric label: short, from a fixed set
        self.message = message
        self.headers = headers or {}
        self.extra = extra

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.message, **self.extra}, status_code=self.status,
                            headers=self.headers)
