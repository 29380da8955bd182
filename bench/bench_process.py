"""Benchmark: what the reaper (dispatcher/agents/reaper.py) adds to the start of every agent run.

run_process() starts `true` (the cheapest possible command) --runs times directly, as before the
reaper, and --runs times under it, interleaved in rounds so both see the same machine load; it
prints the median wall time per run of each, their difference (the reaper's cost per run) and
the ratio. An agent run that starts terraform or git takes hundreds of milliseconds on its own,
so what matters is the difference in milliseconds. Run with `make bench-process`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from dispatcher.agents import process
from dispatcher.agents.process import allowed_env, run_process


async def one_run(workdir: Path) -> float:
    started = time.perf_counter()
    result = await run_process(["true"], cwd=workdir, env=allowed_env(), timeout=30)
    assert result.returncode == 0, result
    return time.perf_counter() - started


async def measure(runs: int, rounds: int, workdir: Path) -> dict[str, list[float]]:
    reaper = process.REAPER
    if reaper is None:
        raise SystemExit("no reaper on this platform: nothing to compare")
    times: dict[str, list[float]] = {"direct": [], "reaper": []}
    for _ in range(rounds):
        for label, path in (("direct", None), ("reaper", reaper)):
            process.REAPER = path
            for _ in range(runs // rounds):
                times[label].append(await one_run(workdir))
    process.REAPER = reaper
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="runs of each kind (default 200)")
    parser.add_argument("--rounds", type=int, default=5, help="alternations of the two kinds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        times = asyncio.run(measure(args.runs, args.rounds, Path(workdir)))
    direct, reaper = (statistics.median(times[k]) * 1000 for k in ("direct", "reaper"))
    print(f"direct:  {direct:7.2f} ms per run  (median of {len(times['direct'])})")
    print(f"reaper:  {reaper:7.2f} ms per run  (median of {len(times['reaper'])})")
    print(f"added:   {reaper - direct:7.2f} ms per run  ({reaper / direct:.2f}x a bare `true`)")


if __name__ == "__main__":
    main()
