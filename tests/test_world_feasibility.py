"""The centreline oracle: which tracks a controller shown to be correct can follow."""

from __future__ import annotations

from pathlib import Path

import pytest

from sarlearn.config import WorldConfig
from sarlearn.world import load_track
from sarlearn.world.family import generate
from sarlearn.world.feasibility import feasibility


@pytest.mark.parametrize("name", ["circle", "oval", "curvy", "hairpin", "wide"])
def test_the_oracle_settles_the_built_in_tracks_that_learners_settle(name: str) -> None:
    check = feasibility(load_track(name))
    assert check.feasible and check.followed
    assert check.mean_abs_error == 0.0
    assert check.max_offset < 0.5  # the sensors' midpoint stays on the drawn centre
    assert check.steps > 300


@pytest.mark.parametrize("name", ["thick", "tight", "figure8"])
def test_the_oracle_cannot_settle_the_tracks_known_to_be_limits_of_the_geometry(
    name: str,
) -> None:
    # thick: the 8-unit line touches a reflex sensor in the tightest bends; tight: bends of
    # radius 16-17, tighter than the network's steering range turns; figure8: the crossing
    # branch passes under the reflex sensors (docs/results.md).
    check = feasibility(load_track(name))
    assert not check.feasible
    assert check.followed  # the reflex keeps it on the line all the same


def test_a_generated_track_gets_a_verdict_and_it_is_cached() -> None:
    track = generate("random:5,width=3,texture=0,noise=0,marks=0,frame=false,second=false")
    first = feasibility(track)
    assert feasibility(track) is first
    assert first.feasible
    # A slower robot is a different question.
    slow = feasibility(track, WorldConfig(speed=15.0))
    assert slow is not first and slow.steps > first.steps


def test_a_line_under_both_reflex_sensors_is_never_feasible() -> None:
    check = feasibility(generate("random:5,width=9.5,radius=18,shape=polygon"))
    assert not check.feasible


def test_an_image_has_no_centreline_to_judge(tmp_path: Path) -> None:
    path = load_track("oval", resolution=1.0).save_png(tmp_path / "oval.png")
    with pytest.raises(ValueError, match="no centreline"):
        feasibility(load_track(path))
