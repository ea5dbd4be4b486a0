"""Round trips to a running twin (or the serial part of a real board): how long the I/O of one
control cycle waits, apart from any computing.

Times ``--n`` of each request, alternating: ``G`` over the serial port (write the command,
read the answer), and with a twin the camera's ``/frame`` and ``/state`` over HTTP. Medians
and 95th percentiles in ms::

    sarlearn twin --dir twin/ &
    python benchmarks/twin_roundtrip.py --twin twin/ [--n 200] [--json out.json]
    python benchmarks/twin_roundtrip.py --port /dev/ttyACM0       # the board alone
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from sarlearn.robots.drive import connect_board
from sarlearn.robots.raspberry_pi import SerialLink
from sarlearn.robots.twin import TwinCamera, read_twin_info


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--twin", help="a running twin's folder")
    where.add_argument("--port", help="a board's serial port")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    info = read_twin_info(args.twin) if args.twin else None
    link = SerialLink(info["serial"] if info else args.port, timeout=1.0)
    camera = TwinCamera(info["camera"]) if info else None
    try:
        connect_board(link)
        requests: dict[str, Callable[[], Any]] = {"G": lambda: link.query("G")}
        if camera is not None:
            requests |= {"frame": camera.grab, "state": camera.state}
        times: dict[str, list[float]] = {k: [] for k in requests}
        for _ in range(args.n):
            for name, request in requests.items():
                t0 = time.perf_counter()
                request()
                times[name].append(time.perf_counter() - t0)
    finally:
        link.close()
        if camera is not None:
            camera.close()
    result = {
        name: {
            "median_ms": float(np.median(t) * 1e3),
            "p95_ms": float(np.percentile(t, 95) * 1e3),
            "n": len(t),
        }
        for name, t in times.items()
    }
    for name, r in result.items():
        print(f"{name:6s} median {r['median_ms']:.2f} ms, p95 {r['p95_ms']:.2f} ms")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return result


if __name__ == "__main__":
    main()
