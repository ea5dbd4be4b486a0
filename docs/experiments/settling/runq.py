"""Screening queue: each job = one candidate over 4 tracks, 4 seeds x 12,000 steps.

    PYTHONPATH=src python docs/experiments/settling/runq.py docs/experiments/settling/q3.json

Tracks: curvy, a hairpin track drawn by mktracks.py (radius 26; made before the built-in
`hairpin` existed), random, figure8. Rows go to runs/settling/screen3.jsonl.
"""
import json, os, subprocess, sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = Path(os.environ.get("SETTLING_OUT", "runs/settling"))
OUT.mkdir(parents=True, exist_ok=True)
HAIRPIN = str(OUT / "hairpin.png")  # python mktracks.py writes it
TR = ["curvy", HAIRPIN, "random", "figure8"]
for tag, base, lrs in json.load(open(sys.argv[1])):
    spec = {"base": base, "tracks": TR, "seeds": 4, "lrs": lrs, "steps": 12000, "tag": tag,
            "out": str(OUT / "screen3.jsonl")}
    subprocess.run([sys.executable, str(HERE / "harness.py"), json.dumps(spec)], check=False)
