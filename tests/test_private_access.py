"""No module reads or writes another object's underscore attributes.

Objects talk through their public state (``state_dict()`` / ``load_state_dict()``, public
attributes and read-only properties); the compiled engine converts explicitly (put/get). An
underscore attribute may be used only on ``self`` or ``cls`` (its own class).
"""

from __future__ import annotations

import ast
from pathlib import Path

import sarlearn

SRC = Path(sarlearn.__file__).parent


#: Underscore names of the standard library used on purpose (documented, or no public way).
STDLIB_PRIVATE = {
    "os._exit",  # the documented way to leave a worker without running cleanup handlers
}
#: ``getattr(obj, "_x")`` on standard-library objects, each with its reason.
STDLIB_GETATTR = {
    "getattr(multiprocessing.current_process(), '_inheriting', False)",  # spawn bootstrap check
    "getattr(pool, '_processes', None)",  # a pool's size: multiprocessing has no public getter
}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_accesses(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, text) of every ``x._name`` where x is not ``self``/``cls`` (dunders allowed)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sarlearn"):
            # another module's private names
            found += [(node.lineno, f"import {a.name}") for a in node.names if _private(a.name)]
            continue
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr", "setattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
            and not (isinstance(node.args[0], ast.Name) and node.args[0].id in ("self", "cls"))
            and ast.unparse(node) not in STDLIB_GETATTR
        ):
            found.append((node.lineno, ast.unparse(node)))
            continue
        if not isinstance(node, ast.Attribute):
            continue
        name = node.attr
        if not name.startswith("_") or (name.startswith("__") and name.endswith("__")):
            continue
        if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            continue
        if ast.unparse(node) in STDLIB_PRIVATE or ast.unparse(node.value) == "super()":
            continue
        found.append((node.lineno, ast.unparse(node)))
    return found


def test_no_module_reads_another_objects_private_attributes() -> None:
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for line, text in private_accesses(tree):
            offenders.append(f"{path.relative_to(SRC)}:{line}: {text}")
    assert not offenders, "private attributes read from outside:\n" + "\n".join(offenders)


def test_the_check_sees_private_access() -> None:
    code = (
        "robot._pose = 1\nx = bank._b0 + self._ok + cls._ok + a.__class__\n"
        "from sarlearn.stages.world.robot import _advance, step_poses\n"
        "getattr(bank, '_c1'); getattr(self, '_ok'); getattr(exc, '__notes__')"
    )
    found = sorted(t for _, t in private_accesses(ast.parse(code)))
    assert found == ["bank._b0", "getattr(bank, '_c1')", "import _advance", "robot._pose"]
