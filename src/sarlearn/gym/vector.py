"""``N`` line-following robots as one Gymnasium ``VectorEnv``, stepped by one compiled call.

::

    envs = gym.make_vec("sarlearn/LineFollower-v0", num_envs=64,
                        vectorization_mode="vector_entry_point", track="curvy")
    obs, info = envs.reset(seed=0)            # robot i is seeded with seed + i
    obs, rewards, terminated, truncated, info = envs.step(envs.action_space.sample())

Robot ``i`` behaves exactly like ``gym.make("sarlearn/LineFollower-v0", ...)`` reset with
``seed + i`` and given the same actions (the vector test checks this step for step against
``gymnasium.vector.SyncVectorEnv``). With ``backend="compiled"`` (default) the world steps in
:class:`sarlearn.stages.world.compiled_world.CompiledWorld`, equal to the numpy world to rounding
(a few ulp of the poses per step); ``backend="numpy"`` runs the reference
:class:`~sarlearn.stages.world.SimWorld` for the whole population (vectorised numpy) and matches the
single environment bit for bit. Observations, rewards, filter banks and resets are shared
code (:class:`sarlearn.gym.core.LineFollowerCore`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from numpy.typing import NDArray

from sarlearn.errors import ConfigError, ShapeError
from sarlearn.gym.core import LineFollowerCore
from sarlearn.gym.env import action_space, observation_space
from sarlearn.gym.options import make_options


class LineFollowerVectorEnv(VectorEnv):
    """``num_envs`` robots on one track (Gymnasium 1.x ``VectorEnv``).

    Args:
        num_envs: number of robots ``N``.
        backend: ``"compiled"`` (one numba call per step for all robots) or ``"numpy"``.
        autoreset_mode: ``"NextStep"`` (Gymnasium's default), ``"SameStep"`` (the final
            observation and info are in ``info["final_obs"]`` / ``info["final_info"]``) or
            ``"Disabled"`` (reset finished robots with ``reset(options={"reset_mask": m})``).
        render_mode: None or ``"rgb_array"``: one picture of the track with every robot.
        **kwargs: the arguments of :class:`~sarlearn.gym.env.LineFollowerEnv` (``track``,
            ``observation``, ``filtered``, ``action``, ``reward``, ``max_steps``, ...).
    """

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": ["rgb_array"],
        "render_fps": 20,
        "autoreset_mode": None,
    }

    def __init__(
        self,
        num_envs: int = 1,
        *,
        backend: str = "compiled",
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
        render_mode: str | None = None,
        **kwargs: Any,
    ) -> None:
        if int(num_envs) != num_envs or num_envs < 1:
            raise ConfigError(f"num_envs must be an integer >= 1, got {num_envs}")
        if render_mode is not None and render_mode != "rgb_array":
            raise ConfigError(f"render_mode={render_mode!r}: only None or 'rgb_array'")
        try:
            mode = AutoresetMode(autoreset_mode)
        except ValueError:
            names = ", ".join(repr(m.value) for m in AutoresetMode)
            raise ConfigError(f"autoreset_mode={autoreset_mode!r} is not one of {names}") from None
        # make_vec passes the spec's ``max_episode_steps``: an episode ends at the first of the
        # two limits, as with gym.make's TimeLimit around a single environment.
        limit = kwargs.pop("max_episode_steps", None)
        if limit is not None:
            given = kwargs.get("max_steps")
            both = isinstance(given, int) and isinstance(limit, int)
            kwargs["max_steps"] = min(limit, given) if both else (limit if given is None else given)
        self.options = make_options(**kwargs)
        self.num_envs = int(num_envs)
        self.core = LineFollowerCore(self.options, n=self.num_envs, backend=backend)
        self.single_observation_space = observation_space(self.options)
        self.single_action_space = action_space(self.options)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.autoreset_mode = mode
        self.metadata = {**self.metadata, "autoreset_mode": mode}
        self.render_mode = render_mode
        self._rngs: list[np.random.Generator] | None = None
        self._autoreset = np.zeros(self.num_envs, dtype=np.bool_)
        self._renderer: Any = None

    @property
    def track(self) -> Any:
        """The :class:`~sarlearn.stages.world.Track` driven on."""
        return self.core.track

    @property
    def np_random_seed(self) -> tuple[int, ...]:  # type: ignore[override]
        """The seed of each robot's generator (-1 if it was not seeded by an int)."""
        return tuple(self._seeds)

    @property
    def np_random(self) -> tuple[np.random.Generator, ...]:  # type: ignore[override]
        """Each robot's generator (start poses)."""
        if self._rngs is None:
            self._seed(None)
        assert self._rngs is not None
        return tuple(self._rngs)

    def _seed(self, seed: int | list[int | None] | None) -> None:
        if seed is None or isinstance(seed, int | np.integer):
            seeds: list[int | None] = (
                [None] * self.num_envs
                if seed is None
                else [int(seed) + i for i in range(self.num_envs)]
            )
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ShapeError(f"reset: {len(seeds)} seeds for {self.num_envs} environments")
        old, old_seeds = self._rngs, list(getattr(self, "_seeds", []))
        pairs = [seeding.np_random(s) for s in seeds]
        self._rngs = [p[0] for p in pairs]
        self._seeds = [p[1] for p in pairs]
        if old is not None and seed is not None:
            # A None in a list of seeds keeps that robot's generator (as SyncVectorEnv does).
            for i, s in enumerate(seeds):
                if s is None:
                    self._rngs[i], self._seeds[i] = old[i], old_seeds[i]

    # ------------------------------------------------------------------ API
    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[NDArray[np.floating], dict[str, Any]]:
        """Reset all robots (or those of ``options["reset_mask"]``); ``seed`` = an int (robot
        ``i`` gets ``seed + i``) or one seed per robot."""
        mask = np.ones(self.num_envs, dtype=np.bool_)
        if options and "reset_mask" in options:
            mask = np.asarray(options["reset_mask"])
            if mask.shape != (self.num_envs,) or mask.dtype != np.bool_ or not mask.any():
                raise ShapeError(
                    f"options['reset_mask'] must be a bool array ({self.num_envs},) with a True"
                )
        if seed is not None or self._rngs is None:
            if seed is not None and not mask.all():
                old = self._rngs
                self._seed(seed)
                if old is not None:  # only the masked robots take their new seed
                    self._rngs = [
                        n if m else o for n, o, m in zip(self._rngs, old, mask, strict=True)
                    ]  # type: ignore[arg-type]
            else:
                self._seed(seed)
        assert self._rngs is not None
        rows = np.flatnonzero(mask)
        self._obs = self.core.reset(rows, [self._rngs[i] for i in rows])
        self._autoreset[rows] = False
        return self._obs.copy(), self._infos(self.core.error(), np.zeros(self.num_envs), rows)

    def step(
        self, actions: Any
    ) -> tuple[
        NDArray[np.floating], NDArray[np.float64], NDArray[np.bool_], NDArray[np.bool_], dict
    ]:
        """Step every robot; finished ones reset as ``autoreset_mode`` says."""
        a = np.asarray(actions, dtype=np.float64).reshape(self.num_envs, -1)[:, 0]
        restart = self._autoreset if self.autoreset_mode == AutoresetMode.NEXT_STEP else None
        rows = np.arange(self.num_envs) if restart is None else np.flatnonzero(~restart)
        obs, reward, term, trunc, info = self.core.step(
            a, rows if len(rows) < self.num_envs else None
        )
        infos = self._infos(info["error"], info["steering"], np.arange(self.num_envs))
        if restart is not None and restart.any():
            back = np.flatnonzero(restart)
            reset_obs = self.core.reset(back, [self._rngs[i] for i in back])  # type: ignore[index]
            obs[back] = reset_obs[back]
            reward[back], term[back], trunc[back] = 0.0, False, False
            infos["error"][back] = self.core.error()[back]
            infos["steering"][back] = 0.0
            infos["step"][back] = 0
        if self.autoreset_mode == AutoresetMode.SAME_STEP:
            done = np.flatnonzero(term | trunc)
            if done.size:
                final_obs = np.full(self.num_envs, None, dtype=object)
                final_info = np.full(self.num_envs, None, dtype=object)
                for i in done:
                    final_obs[i] = obs[i].copy()
                    final_info[i] = {k: v[i] for k, v in infos.items() if not k.startswith("_")}
                infos.update(
                    final_obs=final_obs, _final_obs=term | trunc,
                    final_info=final_info, _final_info=term | trunc,
                )  # fmt: skip
                reset_obs = self.core.reset(done, [self._rngs[i] for i in done])  # type: ignore[index]
                obs[done] = reset_obs[done]
        self._autoreset = term | trunc
        self._obs = obs
        return obs.copy(), reward.astype(np.float64), term, trunc, infos

    def _infos(self, e: NDArray, y: NDArray, rows: NDArray[np.int64]) -> dict[str, Any]:
        mask = np.zeros(self.num_envs, dtype=np.bool_)
        mask[rows] = True
        info: dict[str, Any] = {
            "error": np.asarray(e, dtype=np.float64).copy(),
            "steering": np.asarray(y, dtype=np.float64).copy(),
            "lost_steps": self.core.lost().copy(),
            "step": self.core.steps.copy(),
            "pose": self.core.pose,
        }
        for k in list(info):
            info[f"_{k}"] = mask.copy()
        return info

    def render(self) -> NDArray[np.uint8] | None:  # type: ignore[override]
        """One ``(H, W, 3)`` uint8 picture of the track with every robot (not one per robot)."""
        if self.render_mode is None:
            return None
        if self._renderer is None:
            from sarlearn.stages.world.render import FrameRenderer

            self._renderer = FrameRenderer(
                self.core.track, size=400, sensors=self.core.world.sensors
            )
        return self._renderer.frame(self.core.pose)


__all__ = ["LineFollowerVectorEnv"]
