"""A robot learns to follow a line, in five lines of Python (no CLI, no files).

The agent is one object: each control cycle it gets the reflex error and the raw predictors
and returns the network's steering, which the world adds to the reflex. The defaults are the
main job's: SaR, a network of 10 hidden layers of 10, the `curvy` track. Run:
``python examples/follow_in_five_lines.py``.
"""

import numpy as np

from sarlearn import ClosedLoopAgent, RunConfig, SimWorld

cfg = RunConfig()
world = SimWorld(cfg.world_config)
agent = ClosedLoopAgent.from_config(cfg, n_predictors=world.n_predictors)
errors = [world.step(agent.step(*world.observe()))[0] for _ in range(2000)]  # u = e + G * y

errors = np.abs(errors)
print(f"mean |e|: first 500 steps {errors[:500].mean():.3f}, last 500 {errors[-500:].mean():.3f}")
assert errors[-500:].mean() < errors[:500].mean(), "the error should fall as the network learns"
