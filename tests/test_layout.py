"""The house's layout: no import cycle, no upward import, no module too long to read.

The package is layered along the data flow: shared basics, then the stages of the loop (world,
perception, filter bank, network, rules, motor), the agent and the loop that compose them, the
compiled engine, then what runs experiments (store, reports, runs, sweeps), the robots and the
adapters (gym, torch), and last the command line. A module may import its own layer or below.
Imports inside functions count too: they break a cycle at import time, not in the design.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"

#: Layer of each module, by the longest matching prefix.
LAYERS: dict[str, int] = {
    "sarlearn.errors": 0,
    "sarlearn.atomic": 0,
    "sarlearn.numerics": 0,
    "sarlearn.progress": 0,
    "sarlearn.recipes": 0,
    "sarlearn.datasets": 0,
    "sarlearn.metrics": 0,
    "sarlearn.config": 0,
    "sarlearn.version": 0,
    "sarlearn.stages": 1,
    "sarlearn.agent": 2,
    "sarlearn.robots.interface": 3,
    "sarlearn.loop": 4,
    "sarlearn.engine": 5,
    "sarlearn.store": 6,
    "sarlearn.reports": 7,
    "sarlearn.runs": 8,
    "sarlearn.sweeps": 9,
    "sarlearn.robots": 10,
    "sarlearn.gym": 10,
    "sarlearn.torch": 10,
    "sarlearn.cli": 11,
    "sarlearn.__main__": 12,
    "sarlearn": 12,
}

#: Imports against the layers, each with its reason.
ALLOWED_UP: dict[tuple[str, str], str] = {
    ("sarlearn.config.world", "sarlearn.stages.world.family_parameters"): (
        "a configuration checks a generated track's name with the family's own parser (a leaf: "
        "it imports nothing of the package but its errors)"
    ),
    ("sarlearn.config.world", "sarlearn.stages.world.realism"): (
        "a configuration resolves a realism preset to the parameters defined beside their "
        "formulas (a leaf: it imports nothing of the package)"
    ),
}

MAX_LINES = 600


def modules() -> dict[str, Path]:
    out = {}
    for path in (SRC / "sarlearn").rglob("*.py"):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        out[name] = path
    return out


def resolve(target: str, known: dict[str, Path]) -> str | None:
    while target and target not in known:
        target = target.rpartition(".")[0]
    return target or None


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (anywhere but under ``TYPE_CHECKING``)."""
    known = modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in known.items():
        tree = ast.parse(path.read_text())
        typing_only = {
            id(sub)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for sub in ast.walk(node)
        }
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for target in targets:
                if not target.startswith("sarlearn"):
                    continue
                found = resolve(target, known)
                if not found or found == name or found.startswith(name + "."):
                    continue  # itself, or a package re-exporting its own modules
                if name.startswith(found + ".") and found != "sarlearn":
                    continue  # a module reading its own package's names
                graph[name].add(found)
    return graph


def layer(name: str) -> int:
    best = max((p for p in LAYERS if name == p or name.startswith(p + ".")), key=len)
    return LAYERS[best]


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_even_through_imports_inside_functions() -> None:
    assert strongly_connected(import_graph()) == []


def test_no_module_imports_a_layer_above_its_own() -> None:
    upward = sorted(
        f"{a} -> {b}"
        for a, targets in import_graph().items()
        for b in targets
        if layer(b) > layer(a) and (a, b) not in ALLOWED_UP
    )
    assert upward == []


def test_the_allowed_exceptions_are_still_needed() -> None:
    graph = import_graph()
    assert [pair for pair in ALLOWED_UP if pair[1] not in graph.get(pair[0], set())] == []


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_module_is_longer_than_a_reader_can_hold(name: str) -> None:
    lines = len(modules()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines"
