"""benchmarks/profile_kernel.py (mapping perf samples onto the kernel's instructions),
benchmarks/engine_ab.py (its chunk runners; without perf and without a second source tree)
and benchmarks/step_stages.py (every stage and step timed, on an agent past the decay)."""

from __future__ import annotations

import math

from bench_scripts import load_benchmark

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


def test_functions_are_read_per_function_with_offsets() -> None:
    pk = load_benchmark("profile_kernel")
    code = pk.functions(LISTING)
    steps = next(n for n in code if "_agent_steps" in n)
    assert [off for off, _ in code[steps]] == [0, 1, 5, 9]
    assert code["NRT_incref"][0] == (0, "test   %rdi,%rdi")
    assert pk.short(steps) == "sarlearn.engine.kernels._agent_steps"
    assert pk.short("NRT_incref") == "NRT_incref"


def test_samples_are_attributed_to_functions_and_instructions() -> None:
    pk = load_benchmark("profile_kernel")
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
    ab = load_benchmark("engine_ab")
    for mode in ("learner", "dense"):
        run = ab.chunk_runner("sarlearn", {"rule.name": "sar"}, mode)
        us = run()
        assert math.isfinite(us) and us > 0


def test_measures_every_stage_and_step() -> None:
    out = load_benchmark("step_stages").measure("sar", rounds=2, calls=50, steps=50, warm=600)
    times = out["us_per_call"]
    assert set(times) == {
        "sense",
        "filters",
        "forward",
        "forward: layer 0 sums",
        "forward: activations",
        "step, default world",
        "step, default world, rule off",
        "step, learner alone (every step learns)",
        "step, learner alone, rule off",
    }
    assert all(math.isfinite(v) and v > 0 for v in times.values())
    assert all(out["us_per_call_min"][k] <= v for k, v in times.items())
    # after the decay the flushed filter states are exactly 0: some inputs, not all
    assert 0.0 < out["inputs_exactly_zero"] < 1.0
    assert out["machine"]["cpu"]
