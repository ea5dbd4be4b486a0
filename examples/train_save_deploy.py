"""Train, save, deploy: learn on one track, then drive another with learning off.

The same as ``sarlearn follow --out runs/a`` followed by
``sarlearn follow --load runs/a --freeze --track oval``, in Python.
"""

import tempfile
from pathlib import Path

import numpy as np

from sarlearn import ClosedLoopAgent, RunConfig, make_closed_loop

cfg = RunConfig().with_overrides({"world.track": "curvy"})
loop = make_closed_loop(cfg)  # compiled engine where supported
loop.run(4000)  # learn
saved = Path(tempfile.mkdtemp()) / "agent.npz"
loop.agent.save(saved)  # network + rule state + filter state

# Deploy frozen on another track, from a new start: no learning step at all.
test = cfg.with_overrides({"world.track": "oval", "seed": 7, "load": str(saved), "freeze": True})
frozen = make_closed_loop(test).run(3000)
reflex = make_closed_loop(test.with_overrides({"rule.name": "reflex", "load": None})).run(3000)
print(f"oval, frozen network: mean |e| {np.abs(frozen['error']).mean():.3f}")
print(f"oval, reflex alone:   mean |e| {np.abs(reflex['error']).mean():.3f}")

# The Python API: the saved agent continues exactly where it stopped.
agent = ClosedLoopAgent.load(saved)
print(agent.network, "learning:", agent.learning)
