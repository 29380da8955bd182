"""Fixtures shared by the integration tests that run real dispatcher processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.test_dispatcher import DispatcherProcess


@pytest.fixture
def dispatchers(db_url: str, tmp_path: Path) -> Iterator[Callable[..., DispatcherProcess]]:
    started: list[DispatcherProcess] = []

    def start(name: str, *options: str) -> DispatcherProcess:
        proc = DispatcherProcess(db_url, tmp_path / f"{name}.log", name, *options)
        started.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in started:
            proc.close()
