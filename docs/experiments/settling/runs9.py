"""Harness rows (``harness.py`` output, JSON lines) grouped by (tag, lr, track name).

A later row with the same (tag, track, lr, seed) replaces an earlier one (a re-run)."""
import collections
import json


def grouped(paths: str) -> dict:
    """``paths``: one file or several, comma-separated."""
    rows = {}
    for path in paths.split(","):
        for line in open(path):
            r = json.loads(line)
            rows[(r["tag"], r["track"], r["lr"], r["seed"])] = r
    g = collections.defaultdict(list)
    for (tag, tr, lr, _), r in rows.items():
        g[(tag, lr, json.loads(tr)["world.track"])].append(r)
    return g
