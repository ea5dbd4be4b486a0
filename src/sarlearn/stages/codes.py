"""Codes and typed structures shared by the compiled stages (``sarlearn.stages.*.compiled*``), the
kernel (:mod:`sarlearn.engine.kernels`) and the engine's put/get (:mod:`sarlearn.engine.put`,
:mod:`sarlearn.engine.get`).

The kernel takes named tuples, never positional lists: parameters (``WorldParams``,
``Switches``, ``Constants``, ``CameraParams``, ``Chunk``) and arrays grouped by what they hold
(``WorldArrays``, ``WorldState``, ``FilterState``, ``NetState``, ``RuleState``, ``CameraArrays``,
``Records``, ``Replay``). numba compiles a named tuple of arrays into a struct of array
references and reads its fields by name, at no cost over separate arguments. The array fields
are typed ``Any`` because numba types them from the arrays passed.
"""

from __future__ import annotations

from typing import Any, NamedTuple

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
    has_hidden_weight_bound: int  #: rule.hidden_weight_bound set
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
    hidden_weight_bound: float  #: row-norm bound of the hidden layers
    hidden_bound_fan_in: float  #: 0, fan-in of the scaling ('fan-in'), or minus it ('fan-in-all')
    input_max_norm: float  #: the input vector's norm cap (0 = none)


class CameraParams(NamedTuple):
    """The camera stage's switches (``stages.perception.compiled``); ``on = 0`` for ground
    rows."""

    on: int  #: the predictors come from the camera
    width: int  #: frame width W (pixels)
    n_rays: int  #: rays per pixel, supersample^2
    record_frame: int  #: record every frame (with record_ground, as the reference does)


class Chunk(NamedTuple):
    """Where a chunk starts (the same for every agent)."""

    t_global0: int  #: the global step index of the chunk's first step
    rel_count0: int  #: the relevance's step count before the chunk
    decay: float  #: the relevance normaliser's decay d, float64 (its bias correction)


class WorldArrays(NamedTuple):
    """The shared track and sensor layout (read only)."""

    img: Any  #: the track's padded image, flat float64 (``Track.lookup_table``)
    sx: Any  #: (n_sensors,) sensor x in the robot's frame
    sy: Any  #: (n_sensors,) sensor y in the robot's frame


class WorldState(NamedTuple):
    """Each agent's world: population-first rows."""

    pose: Any  #: (P, 3) x, y, heading
    lost: Any  #: (P,) int64 steps without any sensor seeing the line
    ground: Any  #: (P, n_sensors) the last ground readings


class FilterState(NamedTuple):
    """The filter bank, predictor-major rows of ``n_pred * n_filters`` states per agent."""

    coef: Any  #: (4, N) resonator coefficients expanded to one column per state
    y1: Any  #: (P, N) outputs (the network's input); the delay line's taps
    y2: Any  #: (P, N) the outputs before
    u1: Any  #: (P, N) the previous input, one copy per state
    ux: Any  #: (P, N) scratch


class NetState(NamedTuple):
    """The network: all layers in flat rows per agent (see :mod:`sarlearn.engine.kernels`)."""

    sizes: Any  #: (L + 1,) uint64 layer widths, the input first
    woff: Any  #: (L + 1,) uint64 offsets of each layer's weights in a row of ``W``
    noff: Any  #: (L + 1,) uint64 offsets of each layer's neurons in the per-neuron rows
    W: Any  #: (P, NW) weights
    W0: Any  #: (P, NW) initial weights (weight-change read-out)
    bias: Any  #: (P, NN) biases, or (P, 1) without
    pre: Any  #: (P, NN) pre-activations h
    post: Any  #: (P, NN) activations f(h)
    slope: Any  #: (P, NN) slopes f'(h)
    sig: Any  #: (P, NN) teaching signals
    rfw: Any  #: (P, NN) forward relevance
    tmp: Any  #: (P, n_tmp) scratch; with an input cap, its last n_in entries hold the input
    readout: Any  #: (n_out,) readout coefficients
    wc_last: Any  #: (P, L) the last weight-change sample
    wc_dirty: Any  #: (P,) uint8: the weights may have changed since that sample


class RuleState(NamedTuple):
    """The learning rule's per-agent state."""

    lr: Any  #: (P, L) per-layer rates, in the agents' dtype
    rel_m: Any  #: (P, NN) low-passed relevance
    rel_n: Any  #: (P, NN) normaliser (mean |relevance|)
    feedback: Any  #: (P, NB) fixed feedback matrices (fa, dfa), flat; (P, 1) without
    boff: Any  #: uint64 offsets of each feedback matrix in a row of ``feedback``
    inside: Any  #: (P, NN) uint8 rows known to lie inside the weight bound


class CameraArrays(NamedTuple):
    """The camera stage's arrays (:func:`~sarlearn.stages.perception.compiled.camera_arrays`);
    placeholders of the same types when the stage is off."""

    rx: Any  #: (H * W * s^2,) the rays' floor points, robot frame
    ry: Any
    rvalid: Any  #: uint8: the ray meets the floor in range
    rb: Any  #: segment row edges
    cb: Any  #: segment column edges
    frame: Any  #: (P, H * W) the rendered frame
    colsum: Any  #: (P, rows * W) scratch
    rays: Any  #: (P, s^2) scratch
    pred: Any  #: (P, n_pred) the camera's predictors


class Records(NamedTuple):
    """A chunk's per-step records, ``(P, n)`` unless noted (``ClosedLoop.run``'s keys)."""

    error: Any
    steering: Any  #: in the agents' dtype
    left: Any
    right: Any
    x: Any
    y: Any
    heading: Any
    off_track: Any  #: bool
    sensor_left: Any
    sensor_right: Any
    ground: Any  #: (P, n, n_sensors), or (P, 0, 0) when not recorded
    weight_change: Any  #: (P, n_samples, L) in the agents' dtype
    saturated: Any  #: (P, n, L)
    frame: Any  #: (P, n, H * W) camera frames, or (P, 0, 0) when not recorded


class Replay(NamedTuple):
    """Agents without the world (``on``): step t feeds them ``predictors[t, p * n_pred:]`` and
    ``errors[t, p]``, float64; otherwise any 2-D float64 arrays (one compiled signature)."""

    on: bool
    predictors: Any  #: (n, P * n_pred)
    errors: Any  #: (n, P)
