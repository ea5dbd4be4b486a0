"""A robot learns to follow a line, in five lines of Python (no CLI, no files).

The agent is one object: each control cycle it gets the reflex error and the raw predictors
and returns the network's steering, which the world adds to the reflex. Run:
``python examples/follow_in_five_lines.py``.
"""

import numpy as np

from sarlearn.agent import ClosedLoopAgent
from sarlearn.config import RunConfig
from sarlearn.world.sim import SimWorld

# A shallow network (720 filtered inputs -> 2 outputs) learns quickly with backprop at 1e-4.
cfg = RunConfig().with_overrides(
    {"world.track": "oval", "network.layers": [2], "rule.name": "gdm", "rule.lr": 1e-4}
)

world = SimWorld(cfg.world)
agent = ClosedLoopAgent.from_config(cfg, n_predictors=world.n_predictors)
errors = []
for _ in range(1500):
    e, x = world.observe()  # reflex error (P,), predictors (P, 144)
    errors.append(world.step(agent.step(e, x))[0])  # steer: u = e + G * y

errors = np.abs(errors)
print(f"mean |e|: first 500 steps {errors[:500].mean():.3f}, last 500 {errors[-500:].mean():.3f}")
