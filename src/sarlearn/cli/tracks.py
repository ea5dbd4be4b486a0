"""`sarlearn tracks`: list the built-in tracks, show generated ones, or write one (or any
image) out as a PNG."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer

from sarlearn.cli.checks import check_output_path
from sarlearn.errors import SarlearnError

if TYPE_CHECKING:
    from rich.console import Console

    from sarlearn.stages.world.track import Track


def tracks(
    write: str | None = typer.Option(
        None,
        "--write",
        "-w",
        metavar="NAME|IMAGE",
        help="Track to write: a built-in name, or an image file to re-render.",
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="PNG file to write."),
    seed: int = typer.Option(0, "--seed", help="Seed of the 'random' track."),
    arena: float = typer.Option(250.0, "--arena", help="Arena side (units)."),
    resolution: float = typer.Option(
        4.0,
        "--resolution",
        help="Pixels per unit of the written PNG (built-in and generated tracks; the oracle of "
        "--random drives on this image).",
    ),
    line_width: float = typer.Option(3.0, "--line-width", help="Line width (units)."),
    random: list[str] | None = typer.Option(
        None,
        "--random",
        "-r",
        metavar="SEED[,KEY=VALUE...]",
        help="Show a generated track (random:SEED with optional overrides, e.g. "
        "'17,width=6,frame=true'): what was drawn and whether the centreline oracle can "
        "follow it. Repeat for several; with --out, write the (single) track as a PNG.",
    ),
    show_start: bool = typer.Option(
        False,
        "--show-start",
        help="Draw the robot at its automatic start pose, with its sensors, at --resolution "
        "pixels per unit (a picture, not a floor image to load back).",
    ),
) -> None:
    """List the built-in tracks, or write one as a PNG (``--write NAME --out FILE.png``).

    The PNG is a floor image (white floor, black line) that loads back as a track
    (``world.track = "FILE.png"``); ``--show-start`` writes a picture with the robot instead.
    """
    from rich.console import Console

    console = Console()
    if random:
        if write is not None:
            _fail("use --random SEED or --write NAME, not both")
        names = [r if r.startswith("random:") else f"random:{r}" for r in random]
        if out is not None and len(names) != 1:
            _fail("--out writes one track: give --random once")
        write = names[0] if out is not None else None
        try:
            _show_generated(console, names, resolution)
        except (SarlearnError, ValueError) as exc:
            _fail(str(exc))
        if write is None:
            return
    if write is None:
        if out is not None:
            _fail("--out needs --write NAME (the track to write)")
        _list(console)
        return
    if out is None:
        _fail("--write needs --out FILE.png")
    if out.suffix.lower() != ".png":
        _fail(f"--out must be a .png file, got {out}")
    if seed < 0:
        _fail(f"--seed must be 0 or more, got {seed}")
    try:
        check_output_path(out, "--out", folder=False)
    except SarlearnError as exc:
        _fail(str(exc))
    try:
        from sarlearn.stages.world import load_track

        track = load_track(
            write, arena=arena, seed=seed, resolution=resolution, line_width=line_width
        )
        if show_start:
            from sarlearn.stages.world.raster import check_image_size

            check_image_size(write, max(track.width, track.height), resolution)
            _write_start_picture(track, resolution, out)
        else:
            track.save_png(out)
    except (SarlearnError, ValueError, OSError) as exc:
        _fail(str(exc))
    console.print(f"wrote {out} (track {track.name!r}, {track.width:g} x {track.height:g} units)")


def _list(console: Console) -> None:
    from rich.table import Table

    from sarlearn.stages.world.tracks import DEFAULT_TRACK, TRACK_NAMES, describe, style_of

    table = Table(title="Built-in tracks", title_justify="left")
    table.add_column("name", style="bold")
    table.add_column("size")
    table.add_column("description")
    for name in TRACK_NAMES:
        style = style_of(name)
        mark = (" *" if name == DEFAULT_TRACK else "") + (" †" if style.role != "settling" else "")
        width, height = style.size
        table.add_row(name + mark, f"{width:g} x {height:g}", describe(name))
    console.print(table)
    console.print(
        "* default. † cooperation track: left out of the settling target. Sizes at --arena "
        "250 (they scale with it). Any PNG/JPEG image (dark line on a light floor) is a track "
        "too: set world.track to its path. Write a track out: sarlearn tracks --write NAME "
        "--out FILE.png. Generated tracks: world.track = 'random:SEED[,KEY=VALUE...]' "
        "(sarlearn tracks --random SEED; docs/world.md, 'Generated tracks')."
    )


def _show_generated(console: Console, names: list[str], resolution: float) -> None:
    """A table of what each generated track drew, and the centreline oracle's verdict."""
    from rich.table import Table

    from sarlearn.stages.world.family import generate
    from sarlearn.stages.world.feasibility import feasibility

    table = Table(title="Generated tracks", title_justify="left")
    table.add_column("", style="bold")
    rows: dict[str, list[str]] = {}
    for name in names:
        track = generate(name, resolution)
        d = track.drawn
        check = feasibility(track)
        extras = [f"{d.marks} marks"] if d.marks else []
        extras += ["frame"] if d.frame else []
        extras += ["second line"] if d.second else []
        verdict = "feasible" if check.feasible else "followed" if check.followed else "lost"
        table.add_column(d.name)
        for key, value in (
            ("shape", d.shape if d.shape == "blob" else f"{d.corners}-corner polygon"),
            ("arena", f"{d.arena[0]:.0f} x {d.arena[1]:.0f}"),
            ("width", f"{d.width:.2f}"),
            ("contrast", f"{d.contrast:.2f}"),
            ("texture", f"{d.texture:.2f}"),
            ("noise", f"{d.noise:.3f}"),
            ("gaps", str(d.gaps)),
            ("min radius", f"{d.min_radius:.1f}"),
            ("length", f"{d.length:.0f}"),
            ("distractors", ", ".join(extras) or "none"),
            ("oracle", verdict),
        ):
            rows.setdefault(key, []).append(value)
    for key, values in rows.items():
        table.add_row(key, *values)
    console.print(table)
    console.print(
        "oracle: 'feasible' = a controller that knows the centreline settles it (the success "
        "criterion holds for a full lap), 'followed' = it stays on the line but cannot keep "
        "e = 0, 'lost' = it cannot follow it (sarlearn.stages.world.feasibility)."
    )


def _write_start_picture(track: Track, scale: float, out: Path) -> None:
    from sarlearn.config import WorldConfig
    from sarlearn.stages.world import start_pose, world_image
    from sarlearn.stages.world.render import save_image
    from sarlearn.stages.world.sensors import ground_sensors

    pose = start_pose(track)
    rgb = world_image(track, pose, sensors=ground_sensors(WorldConfig()), scale=scale)
    save_image(rgb, out)


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)
