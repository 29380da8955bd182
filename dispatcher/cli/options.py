"""Option types that refuse nonsense with a message saying what is expected.

argparse calls these with the text the user typed; an ArgumentTypeError becomes
`nightshift X: error: argument --lease: ...` and exit status 2. The config file (nightshift.toml) and
the environment go through the same functions.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_SECONDS = 10 * 365 * 86400  # ten years: further than that is a typo, and datetime overflows soon after


def _number(text: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """Seconds and the like: more than 0, at most ten years."""
    value = _number(str(text))
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    if value > MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_SECONDS} (ten years), got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = _number(str(text))
    if value < 0 or value > MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_SECONDS} (ten years), got {text}")
    return value


def _integer(text: str) -> int:
    try:
        return int(str(text), 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def positive_int(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def int_between(low: int, high: int) -> Callable[[str], int]:
    def check(text: str) -> int:
        value = _integer(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, got {text}")
        return value
    check.__name__ = "integer"
    return check


def port(text: str) -> int:
    """A TCP port a server can listen on: 1-65535 (0 would be "any free port", which nobody can scrape)."""
    value = _integer(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port between 1 and 65535, got {text}")
    return value


def kind_list(text: str) -> tuple[str, ...]:
    """'drift-scan,noop' -> ('drift-scan', 'noop'); an empty list or empty item is refused
    (`--kinds ,` silently meant every kind)."""
    kinds = tuple(part.strip() for part in str(text).split(","))
    if not kinds or any(not k for k in kinds):
        raise argparse.ArgumentTypeError(
            f"expected kinds separated by commas, e.g. drift-scan,noop; got {text!r}")
    return kinds


def non_empty(text: str) -> str:
    if not str(text).strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return str(text)


def duration(text: str) -> timedelta:
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"expected a duration such as 90m, 24h, 7d or 2w, got {text!r}")
    seconds = float(match[1]) * _SECONDS[match[2]]
    if seconds > MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"at most ten years, got {text}")
    return timedelta(seconds=seconds)


def _timestamp(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def future_time(text: str) -> datetime:
    """'90d' from now, or an ISO date/time (UTC unless it says otherwise); never in the past."""
    value = _timestamp(text)
    if value is None:
        value = datetime.now(UTC) + duration(text)
    if value <= datetime.now(UTC):
        raise argparse.ArgumentTypeError(f"must be in the future, got {text}")
    return value


def past_time(text: str) -> datetime:
    """'24h' ago, or an ISO date/time (UTC unless it says otherwise)."""
    value = _timestamp(text)
    return value if value is not None else datetime.now(UTC) - duration(text)
