"""Generated tracks (`random:SEED[,KEY=VALUE...]`): drawn from the seed, overridable, measured."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sarlearn.config import RunConfig, WorldConfig
from sarlearn.errors import ConfigError, TrackError
from sarlearn.gym.options import make_options
from sarlearn.stages.world import SimWorld, load_track
from sarlearn.stages.world.curves import radius_of_curvature
from sarlearn.stages.world.family import (
    EVALUATION_SEEDS,
    PARAMETERS,
    TUNING_SEEDS,
    _generate,
    draw_parameters,
    generate,
    half_extents,
    parse_name,
    track_label,
    track_name,
)

#: A plain loop: nothing but the line, full contrast, on a clean floor.
PLAIN = {"texture": 0.0, "noise": 0.0, "gaps": 0, "marks": 0, "frame": False, "second": False,
         "contrast": 1.0}  # fmt: skip


def plain(seed: int, **overrides: object) -> str:
    """The name of seed ``seed``'s loop drawn plain, with ``overrides`` on top."""
    return track_name(seed, **{**PLAIN, **overrides})


def _distance_to_line(track, mask):  # type: ignore[no-untyped-def]
    """Distance (units) from each pixel of ``mask`` to the track's centreline."""
    rows, cols = np.nonzero(mask)
    pts = track.to_world(np.stack([cols, rows], axis=1).astype(float))
    line = track.centreline
    out = np.empty(len(pts))
    for lo in range(0, len(pts), 512):
        d = pts[lo : lo + 512, None, :] - line[None]
        out[lo : lo + 512] = np.sqrt((d**2).sum(axis=2).min(axis=1))
    return out


def test_a_seed_always_draws_the_same_track() -> None:
    a = generate("random:12", resolution=2.0)
    _generate.cache_clear()
    b = generate("random:12", resolution=2.0)
    assert a is not b
    assert np.array_equal(a.image, b.image)
    assert np.array_equal(a.centreline, b.centreline)
    assert a.drawn == b.drawn
    c = generate("random:13", resolution=2.0)
    assert c.drawn != a.drawn


def test_drawn_parameters_stay_in_their_documented_ranges() -> None:
    seen_shapes = set()
    for seed in range(200):
        p = draw_parameters(seed)
        seen_shapes.add(p["shape"])
        assert 1.5 <= p["width"] <= 9.0
        assert 0.35 <= p["contrast"] <= 1.0
        assert 0.0 <= p["texture"] <= 1.0 and 0.0 <= p["noise"] <= 0.05
        assert 0 <= p["gaps"] <= 4 and 0 <= p["marks"] <= 6
        assert 4 <= p["corners"] <= 8
        assert 200.0 <= p["arena"] <= 320.0 and 0.6 <= p["aspect"] <= 1.0
        assert 15.0 <= p["margin"] <= 30.0
        assert 2.0 <= p["frame_inset"] <= 8.0 and 6.0 <= p["second_gap"] <= 16.0
        # Log-uniform 16-60, capped so that it fits the arena.
        assert 0 < p["radius"] <= 60.0
        for key, value in p.items():
            spec = PARAMETERS[key]
            if spec.low is not None:
                assert spec.low <= value <= spec.high, key
    assert seen_shapes == {"polygon", "blob"}


def test_the_tuning_and_evaluation_seeds_are_disjoint() -> None:
    assert set(TUNING_SEEDS).isdisjoint(EVALUATION_SEEDS)
    assert len(TUNING_SEEDS) == len(EVALUATION_SEEDS) == 10_000


@pytest.mark.parametrize("seed", [0, 5, 189, 1_000_003])
def test_the_loop_is_closed_fits_its_arena_and_bends_no_tighter_than_drawn(seed: int) -> None:
    track = generate(f"random:{seed}", resolution=1.0)
    d = track.drawn
    line = track.centreline
    steps = np.linalg.norm(np.diff(line, axis=0, append=line[:1]), axis=1)
    assert steps.max() < 0.6  # closed: the last point is as close to the first as any two
    assert d.length == pytest.approx(steps.sum())
    w, h = d.arena
    assert (track.width, track.height) == pytest.approx((w, h), rel=0.01)
    edge = d.margin + 0.5 * d.width - 1e-6
    assert line.min() >= edge - 1e-6
    assert (line[:, 0] <= w - edge).all() and (line[:, 1] <= h - edge).all()
    measured = np.abs(radius_of_curvature(line)).min()
    assert measured == pytest.approx(d.min_radius)
    assert measured >= 0.97 * d.radius


@pytest.mark.parametrize("seed", [189, 272])
def test_a_blob_too_tight_for_its_arena_is_drawn_at_the_ellipses_radius(seed: int) -> None:
    # These seeds draw a blob whose radius even the arena's ellipse (the blob's last resort)
    # bends tighter than: the track is drawn at the ellipse's own smallest radius.
    p = draw_parameters(seed)
    hx, hy = half_extents(p)
    ellipse = min(hx, hy) ** 2 / max(hx, hy)
    assert p["shape"] == "blob" and p["radius"] > ellipse
    d = generate(f"random:{seed}", resolution=1.0).drawn
    assert d.radius == pytest.approx(0.95 * ellipse)
    assert d.min_radius >= 0.97 * d.radius
    with pytest.raises(TrackError, match="no blob loop"):  # a radius asked for is kept
        generate(f"random:{seed},radius={p['radius']}", resolution=1.0)


def test_a_polygon_bends_exactly_at_its_radius() -> None:
    d = generate("random:21,shape=polygon,radius=30,corners=5", resolution=1.0).drawn
    assert d.shape == "polygon" and d.corners == 5 and d.radius == 30.0
    assert 29.0 <= d.min_radius <= 31.0


@pytest.mark.parametrize("width", [1.5, 3.0, 6.0, 9.0])
def test_the_line_is_drawn_as_wide_as_asked(width: float) -> None:
    track = generate(plain(4, width=width), resolution=4.0)
    d = track.drawn
    # Each pixel's darkness is the share of it the line covers: the ink adds up to the line's
    # area, length x width (up to the bends' inner/outer difference, which cancels).
    area = track.image.sum() * track.scale**2
    assert area / d.length == pytest.approx(width, rel=0.02)
    assert track.image.max() == pytest.approx(1.0)


def test_contrast_is_the_darkness_the_sensors_read_on_the_line() -> None:
    track = generate(plain(4, contrast=0.4), resolution=2.0)
    on_line = track.darkness(track.centreline)
    assert on_line.max() == pytest.approx(0.4)
    assert np.median(on_line) == pytest.approx(0.4, abs=0.01)


def test_gaps_leave_the_line_without_ink_on_straight_stretches() -> None:
    track = generate(plain(9, gaps=3, shape="polygon"), resolution=2.0)
    assert track.drawn.gaps == 3
    on_line = track.darkness(track.centreline)
    blank = on_line < 0.05
    assert 3 * 3.0 - 1.5 <= blank.sum() * 0.5 <= 3 * 6.0 + 1.5  # 3-6 units of bare floor
    runs = np.count_nonzero(np.diff(blank.astype(int)) == 1) + int(blank[0] and not blank[-1])
    assert runs == 3
    assert not blank[: len(blank) // 10].any()  # none in the first tenth, where the start is


def test_no_distractor_means_nothing_dark_away_from_the_line() -> None:
    track = generate(plain(6), resolution=2.0)
    far = _distance_to_line(track, track.image > 0.05)
    assert far.max() <= 0.5 * track.drawn.width + 1.0
    assert not track.drawn.distractors


@pytest.mark.parametrize(
    ("overrides", "field"), [({"marks": 4}, "marks"), ({"second": True}, "second")]
)
def test_distractors_are_drawn_beside_the_line_when_asked(
    overrides: dict[str, object], field: str
) -> None:
    track = generate(plain(6, **overrides), resolution=2.0)
    d = track.drawn
    assert getattr(d, field) and d.distractors
    far = _distance_to_line(track, track.image > 0.5)
    away = far[far > 0.5 * d.width + 2.0]
    assert len(away) > 20
    # ... but clear of the reflex sensors (5 units off the centre) while the robot is on it.
    assert away.min() >= 0.5 * d.width + 5.0


def test_a_frame_runs_along_the_image_border() -> None:
    track = generate(plain(6, frame=True, frame_inset=3.0, width=4.0), resolution=2.0)
    assert track.drawn.frame
    img = track.image
    inset = round((3 + 2) * track.pixels_per_unit)  # the frame's centre, in pixels
    for band in (img[inset, inset:-inset], img[-inset - 1, inset:-inset],
                 img[inset:-inset, inset], img[inset:-inset, -inset - 1]):  # fmt: skip
        assert band.min() > 0.9


def test_a_frame_keeps_clear_of_the_loop() -> None:
    track = generate(plain(6, frame=True, frame_inset=8.0, width=9.0, margin=5.0), resolution=2.0)
    d = track.drawn
    assert d.margin == 8.0 + 9.0 + 3.0
    line = track.centreline
    w, h = d.arena
    border = np.minimum.reduce([line[:, 0], line[:, 1], w - line[:, 0], h - line[:, 1]])
    # Loop ink (centre - width / 2) to the frame's inner edge (inset + width): >= 3 units.
    assert (border - 0.5 * d.width - (d.frame_inset + d.width)).min() >= 3.0 - 1e-6


def test_an_override_changes_only_its_parameter() -> None:
    base = draw_parameters(17)
    seed, overrides = parse_name("random:17,width=6,frame=true")
    assert (seed, overrides) == (17, {"width": 6.0, "frame": True})
    changed = draw_parameters(seed, overrides)
    assert changed["width"] == 6.0 and changed["frame"] is True
    # The radius cap and a frame's clearance depend on the overridden values; nothing else.
    derived = ("width", "frame", "radius", "margin")
    assert {k: v for k, v in changed.items() if k not in derived} == {
        k: v for k, v in base.items() if k not in derived
    }


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("random:", "the seed must be an integer"),
        ("random:x", "the seed must be an integer"),
        ("random:-3", "the seed must be >= 0"),
        ("random:3,widht=6", "unknown parameter 'widht'"),
        ("random:3,width", "'width' is not KEY=VALUE"),
        ("random:3,width=wide", "width must be a number"),
        ("random:3,width=12", "width = 12 is out of range [0.5, 9.5]"),
        ("random:3,gaps=1.5", "gaps must be an integer"),
        ("random:3,frame=maybe", "frame must be true or false"),
        ("random:3,shape=square", "shape must be one of polygon, blob"),
        ("random:3,width=4,width=5", "'width' is given twice"),
        ("random:3,width=nan", "out of range"),
    ],
)
def test_bad_names_get_a_clear_track_error(name: str, message: str) -> None:
    with pytest.raises(TrackError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_name(name)
    with pytest.raises(TrackError, match="random:"):
        load_track(name)


def test_bad_names_are_config_errors_in_a_config_and_in_the_gym() -> None:
    with pytest.raises(ConfigError, match="unknown parameter 'widht'"):
        RunConfig().with_overrides({"world.track": "random:3,widht=6"})
    with pytest.raises(ConfigError, match="unknown parameter 'widht'"):
        make_options(track="random:3,widht=6")
    assert make_options(track="random:3,width=5").world.track == "random:3,width=5"


def test_a_radius_that_cannot_fit_is_refused() -> None:
    with pytest.raises(TrackError, match="no polygon loop with bends of radius >= 300"):
        generate("random:1,shape=polygon,radius=300,arena=200")


def test_names_and_labels() -> None:
    assert track_name(17, width=6.0, frame=True) == "random:17,width=6,frame=true"
    assert track_label("random:17,width=6,frame=true") == "random17-width6-frame1"
    assert generate("random:17, width = 6").name == "random:17,width=6"


def test_a_generated_track_is_a_track_everywhere_a_name_is() -> None:
    cfg = WorldConfig(track="random:8,width=4", resolution=2.0)
    world = SimWorld(cfg, population=2)
    assert world.track.drawn.width == 4.0
    assert world.track is load_track("random:8,width=4", resolution=2.0)
    e = world.step()
    assert e.shape == (2,)


def test_a_run_on_a_generated_track_writes_what_was_drawn(tmp_path: Path) -> None:
    from sarlearn.runs.run import default_out_dir, run_follow

    cfg = RunConfig().with_overrides(
        {
            "world.track": "random:8,width=4",
            "world.resolution": 2.0,
            "steps": 300,
            "engine": "numpy",
            "network.layers": [2],
        }
    )
    summary = run_follow(cfg, tmp_path / "run", figures=False)
    drawn = json.loads((tmp_path / "run" / "summary.json").read_text())["track_drawn"]
    assert drawn == summary["track_drawn"]
    assert drawn["width"] == 4.0 and drawn["overrides"] == ["width"] and drawn["seed"] == 8
    assert default_out_dir(cfg, tmp_path).name.startswith("follow-sar-random8-width4-s0-")


def test_the_gymnasium_environment_drives_on_a_generated_track() -> None:
    gym = pytest.importorskip("gymnasium")
    import sarlearn.gym  # registers the environment

    env = gym.make(sarlearn.gym.ENV_ID, track="random:8,width=4")
    env.reset(seed=1)
    assert env.unwrapped.track.drawn.width == 4.0
    _, reward, terminated, _, _ = env.step(env.action_space.sample())
    assert np.isfinite(reward) and not terminated
    env.close()
