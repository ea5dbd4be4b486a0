"""Codes and typed parameters shared by the compiled stages (``sarlearn.stages.*.compiled*``), the
kernel (:mod:`sarlearn.engine.kernels`) and :mod:`sarlearn.engine.fast_loop`."""

from __future__ import annotations

from typing import NamedTuple

from sarlearn.recipes import Carrier, SignAt

#: Activations.
ACT_LOGISTIC, ACT_TANH, ACT_LINEAR = 0, 1, 2

#: Rules are not named here: the kernel reads each rule's recipe (``sarlearn.recipes``),
#: i.e. where the sign is taken (``Switches.sign_at``) and what carries the signal back
#: (``Switches.carrier``), as these codes.
SIGN_NONE, SIGN_OUTPUT, SIGN_PATH, SIGN_LOCAL = (int(s) for s in SignAt)
CARRY_WEIGHTS, CARRY_WEIGHT_SIGNS, CARRY_FEEDBACK, CARRY_DIRECT, CARRY_NONE = (
    int(c) for c in Carrier
)

#: Filter banks.
FILTER_RESONATOR, FILTER_DELAY = 0, 1

#: Per-agent status after a chunk.
STATUS_OK = 0
STATUS_OUTPUT_NONFINITE = 1  # the network's output (forward pass) became NaN/inf
STATUS_STEERING_NONFINITE = 2  # the readout became NaN/inf
STATUS_WEIGHTS_NONFINITE = 3  # a layer's weights became NaN/inf after an update
STATUS_WHEELS_NONFINITE = 4  # e + G y overflowed: the simulator refuses such wheel speeds


class WorldParams(NamedTuple):
    """The world's constants (float64, but ``stride``), as the kernels read them."""

    inv: float  #: pixels per unit (Track.lookup_table)
    height: float  #: image height in units, for y -> row
    umax: float  #: clamps of the padded lookup
    vmax: float
    stride: int  #: row stride of the padded image
    speed: float  #: base wheel speed v
    dt: float  #: control cycle
    axle: float  #: distance between the wheels
    error_gain: float  #: reflex error e = gain (left - right)
    net_gain: float  #: network steering gain G
    width: float  #: arena width (off-track test)
    line_seen: float  #: darkness above which a sensor sees the line


class Switches(NamedTuple):
    """What the loop does (integers and 0/1 flags): the rule's recipe codes, the network's
    shape and activation, the filter bank, the step options, what is recorded."""

    off_after: int  #: steps without the line before 'off track'
    n_layers: int
    act: int  #: ACT_*
    sign_at: int  #: SIGN_* of the rule's recipe
    carrier: int  #: CARRY_* of the rule's recipe
    filter_kind: int  #: FILTER_*
    n_filters: int
    n_pred: int
    has_bias: int
    learning: int
    uses_rel: int  #: the relevance scales the step
    rel_forward: int  #: forward relevance r_l
    normalise: int  #: normalised relevance
    has_rel_cap: int
    slope_gate: int
    output_share: int
    has_weight_bound: int
    has_hidden_bound: int  #: rule.hidden_weight_bound set
    mirror_row: int  #: row predictors: 0 = raw, else sensors per row (mirror differences)
    weights_every: int  #: weight-change sample period
    record_ground: int
    input_cap: int  #: network.input_max_norm set: the input vector is capped in norm


class Constants(NamedTuple):
    """Constants in the agent's dtype: where the reference combines a Python float with a
    dtype array, numpy (NEP 50) casts the float to the dtype first, so the kernels do too."""

    zero: float
    one: float
    half: float
    lowpass: float  #: relevance low-pass a
    one_minus_lowpass: float
    gain: float  #: relevance gain g
    decay: float  #: normaliser decay d
    one_minus_decay: float
    eps: float  #: normaliser floor
    net_gain: float  #: G, in the dtype (the command G y)
    tanh_sat: float  #: numpy's tanh saturation point
    inv_slope0: float  #: 1 / f'(0) (slope gate)
    inv_readout: float  #: 1 / max|readout| (output share)
    weight_bound: float  #: row-norm bound
    rel_cap: float  #: relevance cap
    flush: float  #: decayed states below this become exactly 0
    hidden_bound: float  #: row-norm bound of the hidden layers
    hidden_bound_fan_in: float  #: 0, fan-in of the scaling ('fan-in'), or minus it ('fan-in-all')
    input_max_norm: float  #: the input vector's norm cap (0 = none)


class CameraParams(NamedTuple):
    """The camera stage's switches (``stages.perception.compiled``); ``on = 0`` for ground
    rows."""

    on: int  #: the predictors come from the camera
    width: int  #: frame width W (pixels)
    n_rays: int  #: rays per pixel, supersample^2
    record_frame: int  #: record every frame (with record_ground, as the reference does)
