"""benchmarks/profile_kernel.py (mapping perf samples onto the kernel's instructions) and
benchmarks/engine_ab.py (its chunk runners), without perf and without a second source tree."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"

# Two functions of an object file in different sections: both start at address 0 there.
LISTING = """
kernel.o:     file format elf64-x86-64

Disassembly of section .text:

0000000000000000 <_ZN8sarlearn6engine7kernels12_agent_stepsB3v60B54c8tJTIeFIjxE>:
       0:	push   %rbp
       1:	vmulpd (%rax),%ymm1,%ymm2
       5:	vaddpd %ymm2,%ymm0,%ymm0
       9:	ret

Disassembly of section .ltext:

0000000000000000 <NRT_incref>:
       0:	test   %rdi,%rdi
       3:	ret
"""


def load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_functions_are_read_per_function_with_offsets() -> None:
    pk = load("profile_kernel")
    code = pk.functions(LISTING)
    steps = next(n for n in code if "_agent_steps" in n)
    assert [off for off, _ in code[steps]] == [0, 1, 5, 9]
    assert code["NRT_incref"][0] == (0, "test   %rdi,%rdi")
    assert pk.short(steps) == "sarlearn.engine.kernels._agent_steps"
    assert pk.short("NRT_incref") == "NRT_incref"


def test_samples_are_attributed_to_functions_and_instructions() -> None:
    pk = load("profile_kernel")
    code = pk.functions(LISTING)
    steps = next(n for n in code if "_agent_steps" in n)
    sizes = {name: ins[-1][0] + 16 for name, ins in code.items()}
    # runtime addresses: the two functions far apart, as the JIT places them
    addresses = [(0x7F0000001000, steps), (0x7F0000009000, "NRT_incref")]
    ips = [0x7F0000001005, 0x7F0000001005, 0x7F0000001001, 0x7F0000009000, 0x400000, 0x7F0000005000]
    per_fn, per_ins, inside = pk.attribute(ips, addresses, sizes)
    assert inside == 4  # the Python sample and the one between the functions are outside
    assert per_fn == {steps: 3, "NRT_incref": 1}
    assert per_ins[(steps, 5)] == 2 and per_ins[(steps, 1)] == 1
    assert per_ins[("NRT_incref", 0)] == 1


def test_engine_ab_runs_both_modes() -> None:
    ab = load("engine_ab")
    for mode in ("learner", "dense"):
        run = ab.learner("sarlearn", {"rule.name": "sar"}, mode)
        us = run()
        assert math.isfinite(us) and us > 0
