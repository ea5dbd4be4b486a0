"""Stage by stage, the engine against its numpy twin on the edge cases of the image border.

User images, a line touching the image border, starts facing out of the image: near the border
the lookup reads the padding ring, where the two loops once used different padding and clamps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from border_track import border_image, border_track_file
from sarlearn.config import RunConfig
from sarlearn.engine import kernels as K
from sarlearn.engine.verify import stepwise_deviation
from sarlearn.stages.world.track import Track


def test_lookup_stage_equals_track_darkness_everywhere() -> None:
    """The kernel's bilinear lookup on the track's own table: bit for bit, borders included."""
    track = Track(border_image(), arena=60.0)
    t = track.lookup_table
    img = np.array(t.flat)
    rng = np.random.default_rng(0)
    pts = rng.uniform(-5.0, track.width + 5.0, (4000, 2))
    # plus points exactly on and half a pixel around the borders
    edge = np.array([0.0, 0.5, 1.0]) * track.scale
    ring = np.concatenate([edge, track.width - edge, -edge, track.width + edge])
    pts = np.concatenate([pts, np.stack(np.meshgrid(ring, ring), -1).reshape(-1, 2)])
    ref = track.darkness(pts)
    got = np.array([K.lookup(img, t.stride, t.inv, t.height, t.umax, t.vmax, x, y) for x, y in pts])
    np.testing.assert_array_equal(got, ref)
    assert ref.max() > 0.5  # the points do see the line at the border


@pytest.mark.parametrize(
    ("start", "dtype"),
    [
        ([57.0, 30.0, 0.0], "float64"),  # on the right-edge line, facing out of the image
        ([40.0, 1.5, -np.pi / 2], "float64"),  # on the bottom line, facing out
        ([57.0, 30.0, 0.3], "float32"),
    ],
    ids=["right-edge-facing-out", "bottom-edge-facing-out", "float32"],
)
def test_closed_loop_at_the_image_border_matches_reference(
    tmp_path: Path, start: list[float], dtype: str
) -> None:
    cfg = RunConfig().with_overrides(
        {"world.track": str(border_track_file(tmp_path)), "world.arena": 60.0,
         "world.start": start, "dtype": dtype, "network.layers": [6, 6, 2], "rule.lr": 1e-3}
    )  # fmt: skip
    dev = stepwise_deviation(cfg, steps=40, population=2)
    assert max(dev.values()) < (1e-5 if dtype == "float32" else 1e-12), dev
