"""Draw your own track as a PNG and let the robot learn on it.

Any greyscale or colour image works (a dark line on a light floor; a photo of a real track
too). The run writes its usual folder (summary, trace, figures) under ``runs/``. Run:
``python examples/custom_track.py``.
"""

from pathlib import Path

from PIL import Image, ImageDraw

from sarlearn.config import RunConfig
from sarlearn.runs.run import run_follow

# A rounded-rectangle loop, 3 units wide on a 250-unit arena drawn at 4 pixels per unit.
image = Image.new("L", (1000, 1000), color=255)
ImageDraw.Draw(image).rounded_rectangle((150, 250, 850, 750), radius=220, outline=0, width=12)
track = Path("my_track.png")
image.save(track)

cfg = RunConfig().with_overrides(
    {
        "world.track": str(track),
        "network.layers": [2],
        "rule.name": "sar",
        "rule.lr": 1e-5,
        "steps": 2000,
    }
)
summary = run_follow(cfg)  # out_dir=None: a fresh runs/follow-sar-my_track-s0-<time>/
print(
    f"{summary['status']}: mean |e| {summary['mean_abs_error_first_1000']:.3f} -> "
    f"{summary['mean_abs_error_last_1000']:.3f}; outputs in {summary['out_dir']}"
)
