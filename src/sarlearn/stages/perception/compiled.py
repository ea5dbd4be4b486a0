"""Compiled camera stage: an agent's camera frame and its camera predictors.

Numpy twins: :meth:`sarlearn.stages.world.camera.PinholeCamera.render` (the floor point of every ray
is precomputed in the robot frame,
:attr:`~sarlearn.stages.world.camera.PinholeCamera.ground_points`;
a frame is one ground-sensor lookup per ray, rays above the horizon or beyond ``max_range``
read 0, and each pixel is the mean of its ``supersample``^2 rays) and
:func:`sarlearn.stages.perception.perception.darkness_predictors` as
:class:`sarlearn.stages.perception.perception.CameraPredictors`
calls it (:func:`~sarlearn.stages.perception.perception.segment_grid`: segment means, then
:func:`~sarlearn.stages.perception.perception.mirror_differences`: left segment minus its mirror
image).

The sums are numpy's, in numpy's order: :func:`pairwise_sum` is numpy's pairwise summation
(the inner loop of ``np.add.reduce`` and ``np.add.reduceat``), a pixel is
``0 + pairwise(rays) / s^2`` (``mean``), a segment band is ``a[first] + pairwise(rest)``
(``reduceat``: first over the rows of each band, column by column, then over the columns of
each segment). Given numpy's frame the predictors are bit-identical to numpy's, and so is the
frame given the same cos and sin of the heading; those come from the C library here and from
numpy's SIMD versions there, which may differ by an ulp.

Per agent ``p`` the buffers are rows of population-first arrays: ``frame`` ``(P, H * W)``
(row-major, row 0 the far band), ``colsum`` ``(P, rows * W)``, ``rays`` ``(P, s^2)`` and
``pred`` ``(P, rows * cols / 2)`` (float64 like numpy's perception; the filter stage casts
them to the agent's dtype, as ``ClosedLoopAgent.step`` does).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from numba import njit

from sarlearn.stages.codes import CameraArrays, CameraParams
from sarlearn.stages.world.compiled_sensors import lookup

if TYPE_CHECKING:
    from sarlearn.stages.world.camera import PinholeCamera


@njit(cache=True)
def pairwise_sum(a, row, start, n, stride):
    """Sum of ``a[row, start + i * stride]`` for ``i < n``, in numpy's pairwise order.

    numpy's ``pairwise_sum``: below 8 terms a plain loop from -0.0; up to 128 eight
    accumulators combined as ``((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))`` plus the
    rest one by one; above, the two halves (the first a multiple of 8) summed recursively,
    here with an explicit stack (numba's on-disk cache cannot hold recursive functions).
    """
    if n <= 128:
        return _block_sum(a, row, start, n, stride)
    # post-order walk of numpy's recursion tree: (start, n, phase) frames, partial sums
    f_start = np.empty(128, dtype=np.int64)
    f_n = np.empty(128, dtype=np.int64)
    f_phase = np.empty(128, dtype=np.int64)
    vals = np.empty(128)
    top, nv = 1, 0
    f_start[0], f_n[0], f_phase[0] = start, n, 0
    while top > 0:
        st, m, ph = f_start[top - 1], f_n[top - 1], f_phase[top - 1]
        if m <= 128:
            vals[nv] = _block_sum(a, row, st, m, stride)
            nv += 1
            top -= 1
            continue
        n2 = m // 2
        n2 -= n2 % 8
        if ph == 0:  # first half
            f_phase[top - 1] = 1
            f_start[top], f_n[top], f_phase[top] = st, n2, 0
            top += 1
        elif ph == 1:  # second half
            f_phase[top - 1] = 2
            f_start[top], f_n[top], f_phase[top] = st + n2 * stride, m - n2, 0
            top += 1
        else:  # both done: first + second
            vals[nv - 2] = vals[nv - 2] + vals[nv - 1]
            nv -= 1
            top -= 1
    return vals[0]


@njit(cache=True, inline="always")
def _block_sum(a, row, start, n, stride):
    if n < 8:
        res = -0.0
        for i in range(n):
            res += a[row, start + i * stride]
        return res
    r0 = a[row, start]
    r1 = a[row, start + stride]
    r2 = a[row, start + 2 * stride]
    r3 = a[row, start + 3 * stride]
    r4 = a[row, start + 4 * stride]
    r5 = a[row, start + 5 * stride]
    r6 = a[row, start + 6 * stride]
    r7 = a[row, start + 7 * stride]
    i = 8
    end = n - n % 8
    while i < end:
        k = start + i * stride
        r0 += a[row, k]
        r1 += a[row, k + stride]
        r2 += a[row, k + 2 * stride]
        r3 += a[row, k + 3 * stride]
        r4 += a[row, k + 4 * stride]
        r5 += a[row, k + 5 * stride]
        r6 += a[row, k + 6 * stride]
        r7 += a[row, k + 7 * stride]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[row, start + i * stride]
        i += 1
    return res


@njit(cache=True)
def render(p, pose, img, world_par, rx, ry, rvalid, nss, rays, frame):
    """Agent ``p``'s camera frame at its pose into ``frame[p]`` (``PinholeCamera.render``).

    ``rx``, ``ry`` ``(H * W * s^2,)`` are the rays' floor points in the robot frame, pixel by
    pixel (row-major) and within a pixel as ``ground_points[i, j].reshape(-1, 2)``; ``rvalid``
    marks the rays that meet the floor within range (the others read 0).
    """
    stride = world_par.stride
    inv, height, umax, vmax = world_par.inv, world_par.height, world_par.umax, world_par.vmax
    px, py, th = pose[p, 0], pose[p, 1], pose[p, 2]
    c = math.cos(th)
    s = math.sin(th)
    count = float(nss)  # mean = sum / count (numpy divides by the count as a float)
    plain = nss < 8  # numpy's pairwise sum is then a plain loop: accumulate as we go
    for q in range(frame.shape[1]):
        base = q * nss
        acc = -0.0
        for r in range(nss):
            k = base + r
            v = 0.0
            if rvalid[k] != 0:
                # GroundSensors._world_xy, as for the ground sensors
                xw = px + c * rx[k] - s * ry[k]
                yw = py + s * rx[k] + c * ry[k]
                v = lookup(img, stride, inv, height, umax, vmax, xw, yw)
            if plain:
                acc += v
            else:
                rays[p, r] = v
        if not plain:
            acc = pairwise_sum(rays, p, 0, nss, 1)
        # np.add.reduce starts from the identity 0 and adds the pairwise sum
        frame[p, q] = (0.0 + acc) / count


@njit(cache=True)
def predictors(p, frame, width, rb, cb, colsum, pred):
    """``pred[p] = darkness_predictors(frame[p])``: segment means, then mirror differences.

    ``rb`` ``(rows + 1,)`` and ``cb`` ``(cols + 1,)`` are the segment edges
    (``floor(k H / rows)``, ``floor(k W / cols)``), as in ``segment_grid``.
    """
    rows = rb.shape[0] - 1
    cols = cb.shape[0] - 1
    half = cols // 2
    # np.add.reduceat(a, rb[:-1], axis=-2): per band and column, first row + pairwise(rest)
    for i in range(rows):
        r0, r1 = rb[i], rb[i + 1]
        for col in range(width):
            acc = frame[p, r0 * width + col]
            if r1 - r0 > 1:
                acc += pairwise_sum(frame, p, (r0 + 1) * width + col, r1 - r0 - 1, width)
            colsum[p, i * width + col] = acc
    # np.add.reduceat(..., cb[:-1], axis=-1), the division by the segment's pixel count, and
    # g[..., :half] - g[..., ::-1][..., :half]
    for i in range(rows):
        nr = rb[i + 1] - rb[i]
        for k in range(half):
            left = _segment_mean(colsum, p, i * width, cb[k], cb[k + 1], nr)
            j = cols - 1 - k
            right = _segment_mean(colsum, p, i * width, cb[j], cb[j + 1], nr)
            pred[p, i * half + k] = left - right


@njit(cache=True, inline="always")
def _segment_mean(colsum, p, base, c0, c1, nr):
    acc = colsum[p, base + c0]
    if c1 - c0 > 1:
        acc += pairwise_sum(colsum, p, base + c0 + 1, c1 - c0 - 1, 1)
    return acc / float(nr * (c1 - c0))


@njit(cache=True)
def camera_step(p, t, pose, img, world_par, cam_par, cam, r_frame):
    """Render agent ``p``'s frame and compute its predictors into ``pred[p]``; with the frame
    record on, also store the frame as step ``t`` of ``r_frame`` ``(P, n, H * W)``.

    ``world_par`` is the world's :class:`~sarlearn.stages.codes.WorldParams` (the lookup
    table's constants), ``cam_par`` the :class:`~sarlearn.stages.codes.CameraParams` and
    ``cam`` the :class:`~sarlearn.stages.codes.CameraArrays`, as :func:`camera_arrays` makes
    them.
    """
    rx, ry, rvalid, rb, cb = cam.rx, cam.ry, cam.rvalid, cam.rb, cam.cb
    frame, colsum, rays, pred = cam.frame, cam.colsum, cam.rays, cam.pred
    render(p, pose, img, world_par, rx, ry, rvalid, cam_par.n_rays, rays, frame)
    predictors(p, frame, cam_par.width, rb, cb, colsum, pred)
    if cam_par.record_frame != 0:
        for q in range(frame.shape[1]):
            r_frame[p, t, q] = frame[p, q]


def camera_arrays(
    camera: PinholeCamera, rows: int, cols: int, population: int, record_frame: bool = False
) -> tuple[CameraParams, CameraArrays]:
    """Put: the camera stage's parameters and arrays from a camera's public geometry and the
    segment grid.

    Returns the :class:`~sarlearn.stages.codes.CameraParams` and :func:`camera_step`'s
    :class:`~sarlearn.stages.codes.CameraArrays`: the rays' floor points ``rx``, ``ry``
    ``(H * W * s^2,)`` and their validity (the NaN points of
    :attr:`~sarlearn.stages.world.camera.PinholeCamera.ground_points`, above the horizon or out of
    range, read 0), the segment edges ``rb``, ``cb``, and the per-agent buffers ``frame``
    ``(P, H * W)``, ``colsum`` ``(P, rows * W)``, ``rays`` ``(P, s^2)``, ``pred``
    ``(P, rows * cols / 2)``. ``rows`` and ``cols`` must fit the frame (see
    :func:`~sarlearn.stages.perception.perception.segment_grid`).
    """
    from sarlearn.stages.perception.perception import segment_edges

    h, w = camera.shape
    nss = camera.supersample**2
    # (H, W, s, s, 2) -> one ray per row, in the order PinholeCamera.render reads them
    g = camera.ground_points.reshape(-1, 2)
    valid = np.isfinite(g).all(axis=1)
    g = np.where(valid[:, None], g, 0.0)
    rb, cb = segment_edges(h, w, rows, cols)
    par = CameraParams(on=1, width=int(w), n_rays=int(nss), record_frame=int(record_frame))
    p = int(population)
    arrays = CameraArrays(
        rx=np.ascontiguousarray(g[:, 0]), ry=np.ascontiguousarray(g[:, 1]),
        rvalid=valid.astype(np.uint8), rb=rb.astype(np.intp), cb=cb.astype(np.intp),
        frame=np.zeros((p, h * w)), colsum=np.zeros((p, rows * w)), rays=np.zeros((p, nss)),
        pred=np.zeros((p, rows * (cols // 2))),
    )  # fmt: skip
    return par, arrays


def camera_off(population: int) -> tuple[CameraParams, CameraArrays]:
    """The stage off (ground-sensor inputs): placeholders of the same types as
    :func:`camera_arrays`' (the kernel keeps one compiled signature)."""
    z = np.zeros((int(population), 1))
    zi = np.zeros(1, dtype=np.intp)
    off = CameraParams(on=0, width=0, n_rays=0, record_frame=0)
    return off, CameraArrays(np.zeros(1), np.zeros(1), np.zeros(1, np.uint8), zi, zi, z, z, z, z)
