"""Writing a run's output folder safely: atomic files, the per-step trace, checkpoints.

Every file is written to a temporary sibling and moved into place with :func:`os.replace`, so
a run killed at any moment leaves either the old or the new version of a file, never half of
one.

Checkpoints are pickles of the live closed-loop objects (network, rule, filter bank, world,
random generators) plus the trace so far. Pickling the objects themselves, rather than a
hand-written list of their fields, is what makes a resumed run bit-identical to an
uninterrupted one whatever state each module keeps. Large shared read-only objects (the
track image) are left out of the pickle and re-attached on load through pickle's
persistent-id mechanism. A checkpoint belongs to the code that wrote it; only load your own.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sarlearn.atomic import (
    atomic_write_bytes,
    atomic_write_with,
    jsonable,
    read_json,
    write_json,
)

if TYPE_CHECKING:
    import pandas as pd

SUMMARY = "summary.json"
TRACE = "trace.parquet"
CHECKPOINT = "checkpoint.pkl"
CONFIG = "config.json"
#: Folder of the trace written as it goes: ``<start>-<end>.arrow`` files holding the trace
#: rows of steps ``[start, end)`` (and ``.frames.npy`` camera frames). Joined into
#: trace.parquet at the end.
PARTS = "trace.parts"
#: Camera frames ``(T, H, W)`` of a run recorded for replay (float64, exact).
FRAMES = "frames.npy"
CHECKPOINT_FORMAT = 2


def trace_frame(records: Mapping[str, np.ndarray], agent: int = 0) -> pd.DataFrame:
    """The per-step trace of one agent as a DataFrame.

    ``records`` maps column names to arrays shaped ``(T,)`` (shared, e.g. ``step``),
    ``(P, T)`` (one value per agent and step) or ``(P, T, k)`` (k values per step, written as
    columns ``name_0 .. name_{k-1}``, e.g. the raw ground sensors for a replay).
    """
    cols: dict[str, np.ndarray] = {}
    for name, arr in records.items():
        a = np.asarray(arr)
        if a.ndim == 1:
            cols[name] = a
        elif a.ndim == 2:
            cols[name] = a[agent]
        elif a.ndim == 3:
            for k in range(a.shape[2]):
                cols[f"{name}_{k}"] = a[agent, :, k]
        else:
            raise ValueError(f"trace column {name!r} has unsupported shape {a.shape}")
    import pandas as pd  # here: a sweep of engine populations never needs it

    return pd.DataFrame(cols)


def write_trace(path: str | Path, frame: pd.DataFrame) -> Path:
    """Atomically write the trace as Parquet."""
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return atomic_write_bytes(path, buf.getvalue())


def write_arrow(path: str | Path, table: Any) -> Path:
    """Atomically write an Arrow table as an (uncompressed) Arrow IPC file."""
    import pyarrow as pa

    def write(tmp: Path) -> None:
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)

    return atomic_write_with(path, write)


def read_arrow(path: str | Path) -> Any:
    """An Arrow table written by :func:`write_arrow`."""
    import pyarrow as pa

    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_file(source).read_all()


#: The columns of the trace of a run without steps.
EMPTY_TRACE = {
    "step": "int64",
    "error": "float64",
    "moving_sum": "float64",
    "above_threshold": "bool",
}


def join_parquet(path: str | Path, parts: list[Path], drop_prefix: str | None = None) -> Path:
    """Atomically join Arrow parts (:func:`write_arrow`, same columns) into one Parquet file,
    one part in memory at a time (each becomes a row group); columns starting with
    ``drop_prefix`` are left out."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def write(tmp: Path) -> None:
        writer = None
        try:
            for part in parts:
                table = read_arrow(part)
                if drop_prefix:
                    table = table.drop([c for c in table.column_names if c.startswith(drop_prefix)])
                if writer is None:
                    # No dictionaries: floats rarely repeat, and encoding them costs 7x the time.
                    writer = pq.ParquetWriter(tmp, table.schema, use_dictionary=False)
                writer.write_table(table)
            if writer is None:
                schema = pa.schema(
                    [(k, pa.from_numpy_dtype(np.dtype(v))) for k, v in EMPTY_TRACE.items()]
                )
                writer = pq.ParquetWriter(tmp, schema)
                writer.write_table(schema.empty_table())
        finally:
            if writer is not None:
                writer.close()

    return atomic_write_with(path, write)


def join_frames(path: str | Path, parts: list[Path]) -> Path:
    """Atomically join ``.npy`` parts of frames ``(T_i, H, W)`` into one ``(T, H, W)`` file,
    one part in memory at a time."""
    shapes = [np.load(p, mmap_mode="r").shape for p in parts]
    dtype = np.load(parts[0], mmap_mode="r").dtype

    def write(tmp: Path) -> None:
        total = (sum(s[0] for s in shapes), *shapes[0][1:])
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=total)
        at = 0
        for p, shape in zip(parts, shapes, strict=True):
            out[at : at + shape[0]] = np.load(p)
            at += shape[0]
        out.flush()
        del out

    return atomic_write_with(path, write)


def write_frames(path: str | Path, frames: np.ndarray) -> Path:
    """Atomically write camera frames ``(T, H, W)`` as a .npy file (exact values)."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(frames))
    return atomic_write_bytes(path, buf.getvalue())


def read_trace(path: str | Path) -> pd.DataFrame:
    """Read a trace written by :func:`write_trace`."""
    import pandas as pd

    return pd.read_parquet(path)


class _Pickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO, shared: Mapping[str, object]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._by_id = {id(obj): key for key, obj in shared.items() if obj is not None}

    def persistent_id(self, obj: object) -> str | None:
        return self._by_id.get(id(obj))


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, shared: Mapping[str, object]) -> None:
        super().__init__(file)
        self._shared = shared

    def persistent_load(self, pid: str) -> object:
        if pid not in self._shared:
            raise pickle.UnpicklingError(f"checkpoint needs shared object {pid!r}")
        return self._shared[pid]


def save_checkpoint(
    path: str | Path, state: Mapping[str, Any], shared: Mapping[str, object] | None = None
) -> Path:
    """Atomically pickle ``state``; objects in ``shared`` are stored by name, not by value."""
    buf = io.BytesIO()
    _Pickler(buf, shared or {}).dump({"format": CHECKPOINT_FORMAT, **state})
    return atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | Path, shared: Mapping[str, object] | None = None) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (same ``shared`` names)."""
    data = Path(path).read_bytes()
    state = _Unpickler(io.BytesIO(data), shared or {}).load()
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a sarlearn checkpoint of format {CHECKPOINT_FORMAT}")
    return state


__all__ = [
    "CHECKPOINT",
    "CONFIG",
    "FRAMES",
    "PARTS",
    "SUMMARY",
    "TRACE",
    "atomic_write_bytes",
    "atomic_write_with",
    "join_frames",
    "join_parquet",
    "jsonable",
    "load_checkpoint",
    "read_json",
    "read_trace",
    "save_checkpoint",
    "trace_frame",
    "write_arrow",
    "write_frames",
    "write_json",
    "write_trace",
]
