"""`sarlearn sweep`: run a grid of experiments from a spec file and/or flags, resumably."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from sarlearn.cli.checks import check_output_path
from sarlearn.cli.signals import interrupt_exit_code, terminated
from sarlearn.config import ConfigError, RunConfig
from sarlearn.runs.preflight import check_plan_size, check_run_size
from sarlearn.sweeps.spec import PlannedRun, SweepSpec, load_spec, parse_assignment, parse_lr_range


def sweep(
    out: Annotated[
        str, typer.Option("--out", "-o", help="Sweep folder (required); run again to resume.")
    ],
    spec: Annotated[
        Path | None,
        typer.Argument(
            help="Sweep spec TOML (tables: sweep, base, grid, cases; see docs/sweeps.md)."
        ),
    ] = None,
    rule: Annotated[
        list[str] | None, typer.Option("--rule", help="Rule(s) to sweep (repeatable).")
    ] = None,
    lr: Annotated[
        list[float] | None, typer.Option("--lr", help="Learning rate(s) (repeatable).")
    ] = None,
    lr_range: Annotated[
        list[str] | None,
        typer.Option("--lr-range", help="LO:HI:N log-spaced learning rates, e.g. 1e-6:1e-3:7."),
    ] = None,
    layers: Annotated[
        list[str] | None,
        typer.Option("--layers", help="Layer sizes after the inputs, e.g. 10,2 (repeatable)."),
    ] = None,
    seeds: Annotated[
        int | None, typer.Option("--seeds", help="Number of seeds: 0 .. N-1.", min=1)
    ] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Steps per run.", min=1)] = None,
    track: Annotated[
        list[str] | None, typer.Option("--track", help="Track(s): name or image path.")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Base override KEY=VALUE, e.g. rule.relevance.gain=2."),
    ] = None,
    grid: Annotated[
        list[str] | None,
        typer.Option("--grid", help="Grid axis KEY=VALUES as TOML, e.g. 'world.speed=[30, 60]'."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Base RunConfig TOML, applied before the spec's base table."),
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            help="Worker processes (default: all cores; a small sweep of engine populations "
            "runs in-process on all cores).",
            min=1,
        ),
    ] = None,
    trace_every: Annotated[
        int | None,
        typer.Option("--trace-every", help="Keep every n-th trace step (0: none).", min=0),
    ] = None,
    keep_run_dirs: Annotated[
        bool, typer.Option("--keep-run-dirs", help="Keep each run's own output folder.")
    ] = False,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Rerun runs that raised an error.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would run, run nothing.")
    ] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
    shard: Annotated[
        str | None,
        typer.Option(
            "--shard",
            help="I/N: run only planned runs I, I+N, I+2N, ... (0-based; one folder per shard).",
        ),
    ] = None,
    backend: Annotated[
        str,
        typer.Option("--backend", help="Where runs execute: local (process pool) or ray."),
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            help="Ray cluster to join: auto, host:port or ray://host:port "
            "(default: start a local Ray).",
        ),
    ] = None,
    population: Annotated[
        int | None,
        typer.Option(
            "--population",
            help="Most runs per engine population (default: automatic; 1: one run per task).",
            min=1,
        ),
    ] = None,
    max_retries: Annotated[
        int,
        typer.Option("--max-retries", help="Ray: retries of a task whose worker died.", min=0),
    ] = 3,
    run_fn: Annotated[
        str | None,
        typer.Option("--run-fn", hidden=True, help="module:function replacing run_follow."),
    ] = None,
) -> None:
    """Run a sweep of closed-loop experiments; results go to OUT/results.parquet.

    Finished runs (ok or failed) are skipped when the same sweep is run again.
    """
    from sarlearn.store.store import ResultStore, StoreCorruptError, StoreLockedError
    from sarlearn.sweeps.sweep import (
        BACKENDS,
        SweepError,
        SweepInterrupted,
        parse_shard,
        run_sweep,
        select_shard,
    )

    try:
        if not out.strip():
            raise ConfigError("--out is empty; give the sweep's folder")
        folder = Path(out)
        if dry_run:  # reads the folder only (it may be read-only)
            if folder.is_file():
                raise ConfigError(f"--out {out} is an existing file; a sweep needs a folder")
        else:
            check_output_path(folder, "--out")  # before any work, not after it
        if seeds is not None:
            check_plan_size(seeds, f"--seeds {seeds:,}")
        if backend not in BACKENDS:
            raise ConfigError(f"--backend {backend!r}: expected one of {', '.join(BACKENDS)}")
        if address is not None and backend != "ray":
            raise ConfigError("--address needs --backend ray")
        the_shard = parse_shard(shard) if shard is not None else None
        base_spec = load_spec(spec) if spec is not None else SweepSpec(source="flags")
        if config is not None:
            base_spec = replace(base_spec, base_config=RunConfig.from_toml(config))
        the_spec = base_spec.override(
            base=_base_flags(steps, set_ or []),
            grid=_grid_flags(rule, lr, lr_range, layers, seeds, track, grid or []),
        )
        # checks every run's config (of every shard) before anything starts
        planned = select_shard(the_spec.expand(), the_shard)
        check_sweep_memory(planned, out)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None

    opts = the_spec.options
    of_shard = f"shard {the_shard[0]}/{the_shard[1]}: " if the_shard else ""
    every = trace_every if trace_every is not None else opts.trace_every
    if dry_run:
        try:
            done = ResultStore(folder).finished_ids(include_failed=not retry_failed)
        except StoreCorruptError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(code=2) from None
        todo = sum(r.run_id not in done for r in planned)
        typer.echo(
            f"{of_shard}{len(planned)} runs planned, {len(planned) - todo} done, {todo} to run"
        )
        for key, values in {**the_spec.grid, **_case_axes(the_spec)}.items():
            typer.echo(f"  {key}: {values}")
        return
    del planned  # run_sweep plans again: a large sweep's memory should hold one plan, not two
    try:
        summary = run_sweep(
            the_spec,
            folder,
            run_fn=run_fn,
            jobs=jobs or opts.jobs,
            trace_every=every,
            keep_run_dirs=keep_run_dirs or opts.keep_run_dirs,
            retry_failed=retry_failed,
            progress=progress,
            name=opts.name,
            shard=the_shard,
            backend=backend,
            address=address,
            population=population,
            max_retries=max_retries,
        )
    except SweepInterrupted as exc:
        s = exc.summary
        what = "terminated (SIGTERM)" if terminated() else "interrupted"
        typer.echo(f"{what}: {s.ran} runs stored in {out}; run again to resume", err=True)
        raise typer.Exit(code=interrupt_exit_code()) from None
    except ConfigError as exc:  # the plan cannot run (checked before any worker starts)
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    except (SweepError, StoreLockedError, StoreCorruptError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    except OSError as exc:  # the folder cannot be made or written (checked first, yet a race)
        typer.echo(f"error: cannot write the sweep folder {out}: {exc.strerror or exc}", err=True)
        raise typer.Exit(code=2) from None

    for line in summary.repaired:
        typer.echo(f"repaired: {line}", err=True)

    typer.echo(
        f"{of_shard}{summary.planned} runs planned: {summary.skipped} already done, "
        f"{summary.ok} ran "
        f"({summary.succeeded} reached success), {summary.failed} failed -> "
        f"{folder / 'results.parquet'}"
    )
    if summary.failed:
        typer.echo(
            "failed runs are recorded with their error (see `sarlearn report`); "
            "--retry-failed runs them again",
            err=True,
        )
    if summary.infra:
        typer.echo(
            f"error: {summary.infra} runs hit infrastructure errors and were NOT recorded "
            f"(first: {summary.infra_errors[0]}); fix the cause (disk space, memory, the "
            "cluster) and run the same command again to run them",
            err=True,
        )
        raise typer.Exit(code=1)


def check_sweep_memory(planned: list[PlannedRun], out: str | Path | None = None) -> None:
    """Refuse a sweep whose runs would not fit in memory or, with their traces, on the disk
    of ``out``, naming the first such run (each distinct network, filter and sensor shape and
    length is estimated once)."""
    seen: set[str] = set()
    for run in planned:
        cfg = run.config
        key = repr((cfg.network.layers, cfg.filters, cfg.world.predictor_distances,
                    cfg.world.predictors_per_row, cfg.world.inputs, cfg.world.camera,
                    cfg.steps))  # fmt: skip
        if key not in seen:
            seen.add(key)
            what = f"run {run.run_id} ({_params(run.params)})"
            try:
                check_run_size(cfg, out)  # its network's memory, then its length and disk
            except ConfigError as exc:
                raise ConfigError(f"{what}: {exc}") from None


def _params(params: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in params.items()) or "the base config"


def _base_flags(steps: int | None, sets: list[str]) -> dict[str, object]:
    base: dict[str, object] = dict(parse_assignment(s, "--set") for s in sets)
    if steps is not None:
        base["steps"] = steps
    return base


def _grid_flags(
    rule: list[str] | None,
    lr: list[float] | None,
    lr_range: list[str] | None,
    layers: list[str] | None,
    seeds: int | None,
    track: list[str] | None,
    grids: list[str],
) -> dict[str, object]:
    axes: dict[str, object] = dict(parse_assignment(g, "--grid") for g in grids)
    if rule:
        axes["rule.name"] = list(rule)
    lrs = [*(lr or []), *(x for r in lr_range or [] for x in parse_lr_range(r))]
    if lrs:
        axes["rule.lr"] = sorted(set(lrs))
    if layers:
        axes["network.layers"] = [_layer_sizes(s) for s in layers]
    if seeds is not None:
        axes["seed"] = list(range(seeds))
    if track:
        axes["world.track"] = list(track)
    return axes


def _layer_sizes(text: str) -> list[int]:
    try:
        return [int(n) for n in text.split(",")]
    except ValueError:
        raise ConfigError(f"--layers {text!r}: expected sizes like 10,10,2") from None


def _case_axes(spec: SweepSpec) -> dict[str, list[object]]:
    """Union of each case's values per key, for the dry-run listing."""
    axes: dict[str, list[object]] = {}
    for case in spec.cases:
        for key, values in case.items():
            axes.setdefault(key, [])
            axes[key] += [v for v in values if v not in axes[key]]
    return axes
