"""Screening queue (issue 9): each job = one candidate over 4 tracks, 4 seeds x 12,000 steps.

    PYTHONPATH=src python docs/experiments/issue9/runq.py docs/experiments/issue9/q3.json

Tracks: curvy, a hairpin track drawn by mktracks.py (radius 26; made before the built-in
`hairpin` existed), random, figure8. Rows go to runs/issue9/screen3.jsonl.
"""
import json, os, subprocess, sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = Path(os.environ.get("ISSUE9_OUT", "runs/issue9"))
OUT.mkdir(parents=True, exist_ok=True)
HAIRPIN = str(OUT / "hairpin.png")  # python mktracks.py writes it
TR = ["curvy", HAIRPIN, "random", "figure8"]
for tag, base, lrs in json.load(open(sys.argv[1])):
    spec = {"base": base, "tracks": TR, "seeds": 4, "lrs": lrs, "steps": 12000, "tag": tag,
            "out": str(OUT / "screen3.jsonl")}
    subprocess.run([sys.executable, str(HERE / "harness.py"), json.dumps(spec)], check=False)
