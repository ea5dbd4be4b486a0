"""Screening for the predictor mode and smooth steering.

    PYTHONPATH=src NUMBA_NUM_THREADS=1 python docs/experiments/settling/screen9.py docs/experiments/settling/s1.json

Each job: [tag, RunConfig overrides, learning rates]. Tracks: curvy, hairpin, random, figure8,
circle, oval, thick (TRACKS=a,b,... to change); SEEDS seeds (default 6) x STEPS steps
(default 15,000) per cell; settled = last 5,000 steps clean. Rows go to
runs/settling/screen9.jsonl.
"""
import json, os, subprocess, sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = Path(os.environ.get("SETTLING_OUT", "runs/settling"))
OUT.mkdir(parents=True, exist_ok=True)
TR = os.environ.get("TRACKS", "curvy,hairpin,random,figure8,circle,oval,thick").split(",")
for tag, base, lrs in json.load(open(sys.argv[1])):
    spec = {"base": base, "tracks": TR, "seeds": int(os.environ.get("SEEDS", 6)), "lrs": lrs,
            "steps": int(os.environ.get("STEPS", 15000)), "tag": tag,
            "out": str(OUT / "screen9.jsonl")}
    subprocess.run([sys.executable, str(HERE / "harness.py"), json.dumps(spec)], check=False)
