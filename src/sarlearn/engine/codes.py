"""Codes and parameter slots shared by the compiled stages (``sarlearn.engine.stage_*``), the
kernel (:mod:`sarlearn.engine.kernels`) and :mod:`sarlearn.engine.fast_loop`."""

from __future__ import annotations

from sarlearn.recipes import Carrier, SignAt

#: Activations.
ACT_LOGISTIC, ACT_TANH, ACT_LINEAR = 0, 1, 2

#: Rules are not named here: the kernel reads each rule's recipe (``sarlearn.recipes``),
#: i.e. where the sign is taken (``I_SIGN_AT``) and what carries the signal back
#: (``I_CARRIER``), as these codes.
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

# Indices into the float64 world parameters ``wpar``.
W_INV, W_HEIGHT, W_UMAX, W_VMAX = 0, 1, 2, 3
W_SPEED, W_DT, W_AXLE, W_ERROR_GAIN, W_NET_GAIN = 4, 5, 6, 7, 8
W_WIDTH, W_LINE_SEEN = 9, 10
N_WPAR = 11

# Indices into the int64 parameters ``ipar``.
I_STRIDE, I_OFF_AFTER, I_N_LAYERS, I_ACT, I_SIGN_AT, I_FILTER = 0, 1, 2, 3, 4, 5
I_BIAS, I_LEARN, I_USES_REL, I_REL_FORWARD, I_NORMALISE, I_WEIGHTS_EVERY = 6, 7, 8, 9, 10, 11
I_RECORD_GROUND, I_N_FILTERS = 12, 13
# issue 9 options of the learning step (0 = off)
I_SLOPE_GATE, I_OUTPUT_SHARE, I_WEIGHT_BOUND, I_REL_CAP = 14, 15, 16, 17
I_N_PRED, I_CARRIER = 18, 19
# row predictors: 0 = raw, else the sensors per row whose mirror differences are the inputs
I_MIRROR_ROW = 20
I_HIDDEN_BOUND = 21  # rule.hidden_weight_bound set (its value: T_HIDDEN_BOUND)
N_IPAR = 22

# Indices into the constants ``tpar``, stored in the agent's dtype: where the reference
# combines a Python float with a dtype array, numpy (NEP 50) casts the float to the dtype first.
T_ZERO, T_ONE, T_HALF = 0, 1, 2
T_LOWPASS, T_1_LOWPASS, T_GAIN, T_DECAY, T_1_DECAY, T_EPS, T_NET_GAIN = 3, 4, 5, 6, 7, 8, 9
T_TANH_SAT = 10
# issue 9 options: 1/f'(0), 1/max|readout|, the row-norm bound, the relevance cap
T_SLOPE0_INV, T_OUT_INV, T_WEIGHT_BOUND, T_REL_CAP = 11, 12, 13, 14
T_FLUSH = 15
T_HIDDEN_BOUND = 16
N_TPAR = 17
