"""`sarlearn bench`: closed-loop steps per second of the compiled engine (and the numpy loop).

Measures, at the default configuration (or a TOML config), the single-agent closed loop and a
population, for each rule and dtype, repeats every measurement and reports medians in a table
with the machine's details; ``--json PATH`` also writes everything to a file. The measuring
logic lives in :mod:`sarlearn.engine.bench`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sarlearn.cli.checks import check_output_path
from sarlearn.config import ConfigError, RunConfig

if TYPE_CHECKING:
    from rich.table import Table

EXIT_USAGE = 2

_MODE_LABELS = {
    "single": "engine",
    "single-dense": "engine dense",
    "population": "engine",
    "population-dense": "engine dense",
    "lockstep-dense": "lockstep dense",
    "numpy": "numpy loop",
    "learner": "learner alone",
    "cpp": "C++ library, learner alone",
}


def _k(x: float) -> str:
    return f"{x / 1e3:,.0f}k" if x >= 1e4 else f"{x:,.0f}"


def results_table(result: dict[str, Any]) -> Table:
    """The medians of a :func:`sarlearn.engine.bench.run_bench` result as a rich table."""
    from rich.table import Table

    settings = result["settings"]
    table = Table(title="sarlearn bench: closed-loop throughput (median of repeats)")
    table.add_column("rule", no_wrap=True)
    table.add_column("dtype", no_wrap=True)
    table.add_column("mode x agents", no_wrap=True)
    table.add_column("steps/s", justify="right", min_width=9)
    table.add_column("min-max", justify="right", no_wrap=True)
    table.add_column("per CPU-s", justify="right", min_width=9)
    table.add_column("learning", justify="right", min_width=8)
    for r in result["results"]:
        if "skipped" in r:
            label = f"{_MODE_LABELS.get(r['mode'], r['mode'])} x{r['population']}"
            table.add_row(r["rule"], r["dtype"], label, "skipped", "", "", "")
            continue
        spread = f"{_k(min(r['rates']))}-{_k(max(r['rates']))}"
        upd = r.get("update_fraction")
        table.add_row(
            r["rule"],
            r["dtype"],
            f"{_MODE_LABELS.get(r['mode'], r['mode'])} x{r['population']}",
            f"{r['median']:,.0f}",
            spread,
            f"{r['cpu_median']:,.0f}" if "cpu_median" in r else "–",
            "–" if upd is None else f"{upd:.0%}",
        )
    table.caption = (
        "steps/s: agent-steps per second of wall time, all agents together; 'per CPU-s': per "
        "second of this process's CPU time (all threads; under load the wall-clock rate drops, "
        "this one much less); "
        f"median of {settings['repeats']} chunks of {settings['steps']} steps (1 agent) or "
        f"{settings['population_steps']} steps x {settings['population']} agents; 'dense': "
        "graded floor, every step updates every weight; 'learning': steps with e != 0; "
        f"CPU: {result['machine']['cpu']}"
    )
    return table


def ratios_table(result: dict[str, Any]) -> Table:
    """Ratios of medians from the same run (the targets of docs/performance.md)."""
    from rich.table import Table

    table = Table(title="ratios (same process)", show_header=False)
    table.add_column("what")
    table.add_column("ratio", justify="right")
    for name, value in result.get("ratios", {}).items():
        table.add_row(name, f"{value:.2f}x")
    skipped = [r["skipped"] for r in result["results"] if "skipped" in r]
    for why in skipped:
        table.add_row("C++ comparison skipped", why)
    return table


def machine_table(result: dict[str, Any]) -> Table:
    """Machine details and, if measured, bandwidth and roofline."""
    from rich.table import Table

    m = result["machine"]
    table = Table(title="machine", show_header=False)
    table.add_column("what")
    table.add_column("value")
    table.add_row("CPU", str(m["cpu"]))
    table.add_row("logical cores", str(m["cores"]))
    table.add_row("numba threads", f"{m['numba_threads']} ({m['threading_layer']})")
    table.add_row("python / numpy / numba", f"{m['python']} / {m['numpy']} / {m['numba']}")
    roof = result.get("roofline")
    if roof:
        table.add_row("memory bandwidth (copy)", f"{roof['bandwidth_gbs']:.1f} GB/s")
        for dt in ("float64", "float32"):
            b = roof[dt]
            table.add_row(
                f"lockstep bound {dt}",
                f"{b['bytes_per_agent_step'] / 1e3:.0f} kB/agent-step -> "
                f"{b['bound_agent_steps_per_s']:,.0f} agent-steps/s",
            )
    return table


def bench(
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write all results to this JSON file.")
    ] = None,
    steps: Annotated[
        int, typer.Option("--steps", min=1, help="Steps per timed chunk of the single agent.")
    ] = 20_000,
    population: Annotated[
        int, typer.Option("--population", min=1, help="Agents of the population runs.")
    ] = 256,
    repeats: Annotated[
        int, typer.Option("--repeats", min=1, help="Timed chunks per figure (median).")
    ] = 5,
    rule: Annotated[
        list[str] | None, typer.Option("--rule", help="Rule(s) to measure [sar, gdm].")
    ] = None,
    dtype: Annotated[
        list[str] | None,
        typer.Option("--dtype", help="dtype(s) to measure [float64, float32]."),
    ] = None,
    mode: Annotated[
        list[str] | None,
        typer.Option(
            "--mode",
            help="Mode(s): single, single-dense, population, population-dense, "
            "lockstep-dense, numpy, learner, cpp [all]. 'dense': a graded floor on which every "
            "step learns; 'learner'/'cpp': the learner alone, engine / the lab's C++ library "
            "(threads off; skipped when not installed).",
        ),
    ] = None,
    warmup: Annotated[
        int,
        typer.Option(
            "--warmup", min=0, help="Steps each loop runs before timing (past the states' decay)."
        ),
    ] = 2000,
    bandwidth: Annotated[
        bool, typer.Option(help="Measure memory bandwidth for the roofline (512 MB copy).")
    ] = True,
    config: Annotated[
        Path | None, typer.Option("--config", help="Start from this TOML config.")
    ] = None,
) -> None:
    """Measure closed-loop steps/s: one agent and a population, per rule and dtype."""
    from rich.console import Console

    from sarlearn.engine.bench import MODES, run_bench

    console = Console()
    try:
        base = RunConfig.from_toml(config) if config is not None else RunConfig()
        rules = rule or ["sar", "gdm"]
        dtypes = dtype or ["float64", "float32"]
        modes = mode or list(MODES)
        bad = [d for d in dtypes if d not in ("float64", "float32")]
        if bad:
            raise ConfigError(f"--dtype must be float64 or float32, got {bad}")
        bad = [m for m in modes if m not in MODES]
        if bad:
            raise ConfigError(f"--mode must be one of {', '.join(MODES)}, got {bad}")
        from sarlearn.agent import check_rule_name

        for r in rules:
            check_rule_name(r)
        if json_path is not None:  # before the measurements, not after them
            check_output_path(json_path, "--json", folder=False)
    except ConfigError as exc:  # one line, unwrapped, on stderr
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=EXIT_USAGE) from None

    # One line per measurement as it starts and as it ends (also when not on a terminal).
    result = run_bench(
        steps=steps,
        population=population,
        rules=rules,
        dtypes=dtypes,
        repeats=repeats,
        modes=modes,
        bandwidth=bandwidth,
        base=base,
        warmup=warmup,
        progress=lambda line: console.print(line, highlight=False),
    )
    console.print(machine_table(result))
    console.print(results_table(result))
    console.print(ratios_table(result))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=2))
        console.print(f"wrote {json_path}")
