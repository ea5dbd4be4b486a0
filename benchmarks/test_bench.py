"""pytest-benchmark timings of the closed loop (not part of the test suite).

Run with::

    pytest benchmarks/test_bench.py --benchmark-only [--benchmark-json out.json]

Each benchmark times one chunk of steps of a warm loop; divide the chunk size by the reported
mean time for steps per second (``sarlearn bench`` and ``benchmarks/compare.py`` report rates
directly).
"""

from __future__ import annotations

from typing import Any

import pytest

from sarlearn.config import RunConfig
from sarlearn.engine import FastClosedLoop
from sarlearn.loop import ClosedLoop

pytest.importorskip("pytest_benchmark")

CHUNK = 2000


@pytest.mark.parametrize("rule", ["sar", "gdm"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_engine_single_agent(benchmark: Any, rule: str, dtype: str) -> None:
    loop = FastClosedLoop.from_config(
        RunConfig().with_overrides({"rule.name": rule, "dtype": dtype})
    )
    loop.run(50)  # compile or load from the cache
    benchmark(loop.run, CHUNK)


@pytest.mark.parametrize("rule", ["sar", "gdm"])
def test_engine_population_256(benchmark: Any, rule: str) -> None:
    loop = FastClosedLoop.from_config(RunConfig().with_overrides({"rule.name": rule}), 256)
    loop.run(10)
    benchmark(loop.run, CHUNK // 10)


@pytest.mark.parametrize("rule", ["sar", "gdm"])
def test_numpy_single_agent(benchmark: Any, rule: str) -> None:
    loop = ClosedLoop.from_config(RunConfig().with_overrides({"rule.name": rule}))
    loop.run(10)
    benchmark(loop.run, CHUNK // 20)
