"""Compiled fast path of the whole closed-loop step (numba).

    from sarlearn.engine import FastClosedLoop, make_closed_loop
    loop = make_closed_loop(cfg)          # compiled when supported, else sarlearn.loop.ClosedLoop
    records = loop.run(1000)              # the same records as ClosedLoop.run

See :mod:`sarlearn.engine.fast_loop` for the class, :mod:`sarlearn.engine.put` for what is
covered and how the state goes in, :mod:`sarlearn.engine.get` for how it comes back,
:mod:`sarlearn.stages.codes` for the kernel's named tuples and :mod:`sarlearn.engine.kernels`
for the kernels; ``sarlearn bench`` (:mod:`sarlearn.engine.bench`) measures the speed.
"""

from __future__ import annotations

from sarlearn.engine.cache import refresh as _refresh_kernel_cache

_refresh_kernel_cache()  # before the kernels load: recompile them if a stage changed

from sarlearn.engine.fast_loop import (  # noqa: E402
    SUPPORTED_RULES,
    FastClosedLoop,
    check_supported,
    make_closed_loop,
)

__all__ = ["SUPPORTED_RULES", "FastClosedLoop", "check_supported", "make_closed_loop"]
