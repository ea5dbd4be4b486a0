"""Large sweeps in bounded memory: executors hold a bounded amount of work in flight, the
store keeps nothing of a run once it is written, a Ray address is checked before anything is
written, and the sweep modules import without a cycle."""

from __future__ import annotations

import random
import socket
import subprocess
import sys
import weakref
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sarlearn.store.store import RESULTS, ResultStore, StoreCorruptError
from sarlearn.sweeps.ray_backend import check_address
from sarlearn.sweeps.spec import parse_spec
from sarlearn.sweeps.sweep import SweepError, run_sweep
from sarlearn.sweeps.tasks import IN_FLIGHT, Outcome


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


def test_the_store_keeps_no_array_of_a_trace_it_was_given(tmp_path: Path) -> None:
    """A trace given as numpy columns (as an engine population returns it) is written and
    let go: the store keeps the part's bytes for compaction, never a table that shares the
    arrays' memory (36 small arrays per run, ~20 kB of memory each run, that a large sweep
    would otherwise pile up)."""
    from sarlearn.store.records import base_record, fill_summary
    from sarlearn.sweeps.spec import PlannedRun, run_id

    store = ResultStore(tmp_path / "s")
    refs = []
    for unit in range(3):
        items = []
        for k in range(4):
            cfg = parse_spec({"grid": {"seed": [unit * 4 + k]}}).expand()[0].config
            record = base_record(run_id(cfg), cfg, PlannedRun(run_id(cfg), cfg).params)
            fill_summary(record, {"steps_to_success": None, "steps": 5})
            columns = {"step": np.arange(5), "error": np.linspace(0.0, 1.0, 5)}
            refs += [weakref.ref(a) for a in columns.values()]
            items.append((record, columns))
        store.add_many(items)
        del items, columns
    assert sum(r() is not None for r in refs) == 0
    store.compact()  # from the bytes it kept
    traces = store.load_traces()
    assert len(traces) == 12 * 5 and traces["error"].max() == 1.0


def test_a_sweep_lets_go_of_each_finished_run(tmp_path: Path) -> None:
    """A count, not a clock: while a sweep runs (populations in this process), the traces
    of the units already stored are no longer alive anywhere; only the unit being stored is."""
    spec = parse_spec(
        {"base": {"steps": 60, "network.layers": [2]}, "grid": {"seed": {"range": [0, 16]}}}
    )
    refs: list[weakref.ref[np.ndarray]] = []
    most = [0]

    def watch(outcome: Outcome) -> None:
        assert outcome.columns is not None  # the population path: traces as numpy columns
        refs.append(weakref.ref(outcome.columns["error"]))
        most[0] = max(most[0], sum(r() is not None for r in refs))

    summary = run_sweep(spec, tmp_path / "s", jobs=1, population=4, on_outcome=watch)
    assert summary.ok == 16 and len(refs) == 16
    assert most[0] <= 4  # one unit's runs, never the sweep's
