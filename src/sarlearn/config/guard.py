"""The do-no-harm guard's section (:class:`GuardConfig`, ``guard.*``) and the rules it guards
by default."""

from __future__ import annotations

from pydantic import Field

from sarlearn.config.base import Section


class GuardConfig(Section):
    """The do-no-harm guard of the motor stage (:mod:`sarlearn.stages.motor.guard`): a gain
    g in [0, 1] on the network's steering, lowered while the loop errs more than the reflex
    alone did on this track (measured by a probe: the reflex drives alone for ``probe_steps``
    steps from ``probe_at``, unless the loop is quiet by then). docs/generalisation.md."""

    enabled: bool | None = Field(
        None,
        description="Guard the steering (u = e + G g y). None = tied to the rule "
        "(RunConfig.guard_enabled: on for the rules of DEFAULT_GUARD).",
    )
    probe_at: int = Field(
        5000,
        ge=0,
        description="Step of the probe (skipped if |e|'s level is below 'quiet' then, until it "
        "reaches 'relapse'). On wide tuning lines with the camera, a probe at 2,000 interrupted "
        "learners that settle later (5/20 settled against 10/20 without the guard; at 5,000: "
        "9/20).",
    )
    probe_steps: int = Field(
        2000,
        ge=1,
        description="Steps the reflex drives alone in the probe (its reference is the mean |e| "
        "of the last three quarters). On lines wider than the reflex's sensor spacing the "
        "reflex's |e| swings by a fifth from one 500-step stretch to the next; on 120 tuning "
        "runs on 8.5-wide lines with the camera a 500-step probe left 101 at most the "
        "reflex's |e|, a 2,000-step one 109.",
    )
    level_steps: int = Field(500, ge=1, description="Window of the running level of |e| (steps).")
    quiet: float = Field(
        0.25, gt=0, description="A level of |e| below this is quiet: no probe, no guard."
    )
    margin: float = Field(
        0.1, ge=0, lt=1, description="g falls while the level exceeds (1 - margin) x the reference."
    )
    rate: float = Field(0.002, gt=0, description="Change of g per step per relative excess.")
    follow: float = Field(
        0.0,
        ge=0,
        description="After the probe the reference follows |e| at follow x (1 - g) "
        "/ level_steps per step (0 = it stays the probe's mean).",
    )
    relapse: float = Field(
        1.0,
        gt=0,
        description="A learner quiet at the probe is probed when its level of |e| "
        "rises to this (it lost the line).",
    )


#: The rules whose steering is guarded when ``guard.enabled`` is None.
DEFAULT_GUARD: frozenset[str] = frozenset({"sar"})


__all__ = ["DEFAULT_GUARD", "GuardConfig"]
