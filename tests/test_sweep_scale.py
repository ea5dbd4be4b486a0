"""Large sweeps in bounded memory: executors hold a bounded amount of work in flight, a Ray
address is checked before anything is written, and the sweep modules import without a cycle."""

from __future__ import annotations

import random
import socket
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from sarlearn.store.store import RESULTS, ResultStore, StoreCorruptError
from sarlearn.sweeps.ray_backend import check_address
from sarlearn.sweeps.spec import parse_spec
from sarlearn.sweeps.sweep import SweepError, run_sweep
from sarlearn.sweeps.tasks import IN_FLIGHT


def test_the_pool_holds_at_most_in_flight_units_per_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    submitted: list[Any] = []
    most = [0]
    original = ProcessPoolExecutor.submit

    def counting(self: Any, *args: Any, **kw: Any) -> Any:
        fut = original(self, *args, **kw)
        submitted.append(fut)
        most[0] = max(most[0], sum(not f.done() for f in submitted))
        return fut

    monkeypatch.setattr(ProcessPoolExecutor, "submit", counting)
    spec = parse_spec({"base": {"steps": 50}, "grid": {"seed": {"range": [0, 16]}}})
    summary = run_sweep(spec, tmp_path / "s", run_fn="sweep_fakes:fake_run", jobs=2)
    assert summary.ok == 16 and len(submitted) == 16
    assert most[0] <= IN_FLIGHT * 2


def test_a_ray_address_nobody_answers_at_fails_fast_and_writes_nothing(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = parse_spec({"base": {"steps": 50}, "grid": {"seed": [0]}})
    with pytest.raises(SweepError, match=r"cannot reach Ray at 127\.0\.0\.1"):
        run_sweep(spec, tmp_path / "s", backend="ray", address=f"127.0.0.1:{port}")
    assert not (tmp_path / "s").exists()
    with pytest.raises(SweepError, match="expected auto, host:port"):
        check_address("nonsense")
    check_address(None)  # a private local Ray: nothing to check
    check_address("auto")


def test_the_executors_are_siblings_without_an_import_cycle() -> None:
    code = (
        "import sys, sarlearn.sweeps.ray_backend as r, sarlearn.sweeps.local as l\n"
        "assert 'sarlearn.sweeps.sweep' not in sys.modules, 'executors import the sweep'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_flipped_bit_in_the_results_is_named_never_read_as_data(tmp_path: Path) -> None:
    spec = parse_spec({"base": {"steps": 50}, "grid": {"seed": {"range": [0, 12]}}})
    run_sweep(spec, tmp_path / "s", run_fn="sweep_fakes:fake_run", jobs=1)
    path = tmp_path / "s" / RESULTS
    clean = path.read_bytes()
    want = ResultStore(tmp_path / "s").load()
    rng = random.Random(7)
    named = 0
    for _ in range(30):
        data = bytearray(clean)
        data[rng.randrange(4, len(data) - 8)] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(data))
        try:
            got = ResultStore(tmp_path / "s").load()
        except StoreCorruptError as exc:
            assert RESULTS in str(exc)
            named += 1
            continue
        pd.testing.assert_frame_equal(got, want)  # a flip outside the data: nothing changed
    assert named >= 20
