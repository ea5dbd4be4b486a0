"""Confirmation runs: every built-in track, 30,000 steps, seeds seed0 .. seed0+n-1.

    PYTHONPATH=src python docs/experiments/settling/chain.py docs/experiments/settling/c1.json

Each job: [tag, overrides, learning rates, seed0, seeds]. Rows go to runs/settling/confirm.jsonl.
"""
import json, os, subprocess, sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = Path(os.environ.get("SETTLING_OUT", "runs/settling"))
OUT.mkdir(parents=True, exist_ok=True)
ALL = ["curvy", "hairpin", "random", "figure8", "circle", "oval", "thick", "photo", "wide", "tight"]
if os.environ.get("TRACKS"):  # a subset, comma-separated
    ALL = os.environ["TRACKS"].split(",")
for tag, base, lrs, seed0, seeds in json.load(open(sys.argv[1])):
    spec = {"base": base, "tracks": ALL, "seeds": seeds, "seed0": seed0, "lrs": lrs,
            "steps": 30000, "tag": tag, "out": str(OUT / "confirm.jsonl")}
    subprocess.run([sys.executable, str(HERE / "harness.py"), json.dumps(spec)], check=False)
