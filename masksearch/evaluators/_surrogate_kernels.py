"""Numba kernels of :class:`~masksearch.evaluators.surrogate.SurrogateEvaluator`.

They read the surrogate's stored per-weight table ``hw`` (float32, or float16 as its uint16 bit
patterns, widened to float32 as they are read) and ``gw``: the totals over an anchor's kept and
pruned weights, the ``(z, linear term)`` of one mask, ΔL of a population and ΔL of the children
of one parent. The quadratic they evaluate is described in
:mod:`masksearch.evaluators.surrogate`.

Every compiled function calls only functions of this file: Numba's on-disk cache
(``cache=True``) notices edits to the file a function is defined in, not to the files of what
it calls.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import binding as llvm_binding
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_CACHE_LINE = 64  # bytes

# F16C converts float16 to float32 in one instruction; LLVM needs it (or a runtime helper)
_HAS_F16C = bool(llvm_binding.get_host_cpu_features().get("f16c", False))


@intrinsic
def _widen(typingctx, value):  # pragma: no cover - compiled
    """A stored ``hw`` value as float32: a float32 as is, a uint16 as the float16 whose bits it
    holds (an ``fpext``: one ``vcvtph2ps`` per 8 or 16 values on CPUs with F16C)."""
    if value == types.float32:

        def identity(context, builder, signature, args):
            return args[0]

        return types.float32(value), identity
    if value != types.uint16:
        return None

    def codegen(context, builder, signature, args):
        if _HAS_F16C:
            return builder.fpext(builder.bitcast(args[0], ir.HalfType()), ir.FloatType())
        # without F16C LLVM would call a runtime helper the JIT may lack: move the sign,
        # exponent and mantissa into float32 places and rescale the exponent bias (15 → 127)
        # by 2^112, which also turns float16 subnormals into the right float32 normals; the
        # stored values are finite (see _float16_scale), so no inf/NaN case is needed
        int32 = ir.IntType(32)
        bits = builder.zext(args[0], int32)
        sign = builder.shl(builder.and_(bits, int32(0x8000)), int32(16))
        magnitude = builder.shl(builder.and_(bits, int32(0x7FFF)), int32(13))
        moved = builder.bitcast(builder.or_(sign, magnitude), ir.FloatType())
        return builder.fmul(moved, ir.Constant(ir.FloatType(), 2.0**112))

    return types.float32(value), codegen


@numba.njit(parallel=True, cache=True)
def _side_totals(anchor, hw, unit, gw):  # pragma: no cover - compiled
    """Sums of hw rows (times ``unit``, the stored-to-true factor) and gw over the anchor's
    kept and pruned weights (float64)."""
    n_weights, n = hw.shape
    kept_hw = np.zeros(n)
    pruned_hw = np.zeros(n)
    for s in numba.prange(n):
        kept = 0.0
        pruned = 0.0
        for i in range(n_weights):
            if anchor[i]:
                kept += _widen(hw[i, s])
            else:
                pruned += _widen(hw[i, s])
        # unit is a power of two: the product is exact
        kept_hw[s] = kept * unit
        pruned_hw[s] = pruned * unit
    kept_gw = 0.0
    pruned_gw = 0.0
    for i in range(n_weights):
        if anchor[i]:
            kept_gw += gw[i]
        else:
            pruned_gw += gw[i]
    return kept_hw, pruned_hw, kept_gw, pruned_gw


@numba.njit(cache=True)
def _mask_state(
    mask, anchor, hw, unit, gw, z_kept, lin_kept, z_pruned, lin_pruned
):  # pragma: no cover - compiled
    """(z, linear term) of one mask, summing over the fewest rows: the genes where it differs
    from the anchor, its kept genes or its pruned genes (the rows times ``unit``, a power of
    two, are the true values)."""
    n_weights, n = hw.shape
    kept = 0
    differ = 0
    for i in range(n_weights):
        kept += mask[i]
        differ += mask[i] != anchor[i]
    z = np.zeros(n)
    lin = 0.0
    if differ <= min(kept, n_weights - kept):
        for i in range(n_weights):
            if mask[i] != anchor[i]:
                sign = 1.0 if mask[i] else -1.0
                lin += sign * gw[i]
                for s in range(n):
                    z[s] += sign * _widen(hw[i, s])
        z *= unit
    elif 2 * kept <= n_weights:
        for i in range(n_weights):
            if mask[i]:
                lin += gw[i]
                for s in range(n):
                    z[s] += _widen(hw[i, s])
        z *= unit
        z += z_kept
        lin += lin_kept
    else:
        for i in range(n_weights):
            if not mask[i]:
                lin -= gw[i]
                for s in range(n):
                    z[s] -= _widen(hw[i, s])
        z *= unit
        z += z_pruned
        lin += lin_pruned
    return z, lin


@numba.njit(parallel=True, cache=True)
def _population_delta(
    masks, anchor, hw, unit, gw, z_kept, lin_kept, z_pruned, lin_pruned
):  # pragma: no cover - compiled
    n = hw.shape[1]
    out = np.empty(masks.shape[0])
    for p in numba.prange(masks.shape[0]):
        z, lin = _mask_state(masks[p], anchor, hw, unit, gw, z_kept, lin_kept, z_pruned, lin_pruned)
        out[p] = lin + 0.5 / n * np.sum(z * z)
    return out


@intrinsic
def _prefetch(typingctx, array, index):  # pragma: no cover - compiled
    """Hint the CPU to bring the cache line holding ``array[index]`` (a 1-D array) into its
    caches; no effect on results, never faults (an x86 ``prefetcht0``)."""
    if not (isinstance(array, types.Array) and array.ndim == 1):
        return None
    if not isinstance(index, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        array_type, index_type = signature.args
        view = context.make_array(array_type)(context, builder, args[0])
        position = context.cast(builder, args[1], index_type, types.intp)
        pointer = cgutils.get_item_pointer(
            context, builder, array_type, view, [position], wraparound=False
        )
        byte_pointer = ir.IntType(8).as_pointer()
        int32 = ir.IntType(32)
        prefetch = builder.module.declare_intrinsic(
            "llvm.prefetch",
            [byte_pointer],
            ir.FunctionType(ir.VoidType(), [byte_pointer, int32, int32, int32]),
        )
        # read access, keep in all cache levels, data cache
        builder.call(
            prefetch, [builder.bitcast(pointer, byte_pointer), int32(0), int32(3), int32(1)]
        )
        return context.get_dummy_value()

    return types.void(array, index), codegen


@numba.njit(inline="always")
def _prefetch_child(diffs, child, parent, hw, gw):  # pragma: no cover - compiled
    """Prefetch every line a child's genes will read: its rows of ``hw``, ``gw`` and ``parent``."""
    n_weights, n = hw.shape
    line = max(1, _CACHE_LINE // hw.itemsize)
    for j in range(diffs.shape[1]):
        i = diffs[child, j]
        if 0 <= i < n_weights:
            _prefetch(gw, i)
            _prefetch(parent, i)
            row = hw[i]
            for s in range(0, n, line):
                _prefetch(row, s)


@numba.njit(parallel=True, fastmath=True, cache=True)
def _children_delta(
    parent, diffs, parent_z, parent_lin, hw, unit, gw, n_blocks, ahead
):  # pragma: no cover
    """ΔL of each child and the number of out-of-range gene indices met.

    A child's ``z`` is the parent's plus a change gathered from ``k`` rows of ``hw``; the change
    is accumulated in float32 (the gathers are memory-bound: float32 keeps the SIMD lanes full)
    and ``Σ z²`` is the parent's float64 ``Σ z0²`` plus ``Σ change·(2·z0 + change)``, so the
    rounding only touches the (small) change. Rows are widened to float32 as they are read and
    their stored-to-true factor ``unit`` (a power of two, float32) rides on each row's sign.
    Each of ``n_blocks`` blocks of children reuses its buffers: no allocation per child.

    The rows are scattered over ``hw`` (far larger than the caches), so the time goes into
    waiting for memory: while a child is summed, the lines of the child ``ahead`` places on are
    prefetched, which keeps many memory reads in flight. A child's genes are first checked and
    signed, then summed four rows per pass over ``change`` (a quarter of the loads and stores
    of ``change``).
    """
    n_weights, n = hw.shape
    n_children, width = diffs.shape
    out = np.empty(n_children)
    twice_z = (2.0 * parent_z).astype(np.float32)
    parent_square = np.sum(parent_z * parent_z)
    n_blocks = max(1, min(n_children, n_blocks))
    bad = np.zeros(n_blocks, dtype=np.int64)
    for block in numba.prange(n_blocks):
        change = np.empty(n, dtype=np.float32)
        rows = np.empty(width, dtype=np.int64)
        signs = np.empty(width, dtype=np.float32)
        start = block * n_children // n_blocks
        stop = (block + 1) * n_children // n_blocks
        for c in range(start, min(stop, start + ahead)):
            _prefetch_child(diffs, c, parent, hw, gw)
        for c in range(start, stop):
            if c + ahead < stop:
                _prefetch_child(diffs, c + ahead, parent, hw, gw)
            lin = parent_lin
            k = 0
            for j in range(width):
                i = diffs[c, j]
                if i < 0 or i >= n_weights:
                    if i != -1:
                        bad[block] += 1
                    continue
                # the child keeps what the parent pruned (z gains +hw) and prunes what it kept
                if parent[i]:
                    lin -= gw[i]
                    signs[k] = -unit
                else:
                    lin += gw[i]
                    signs[k] = unit
                rows[k] = i
                k += 1
            for s in range(n):
                change[s] = 0.0
            j = 0
            while j + 4 <= k:
                row0, row1, row2, row3 = (
                    hw[rows[j]],
                    hw[rows[j + 1]],
                    hw[rows[j + 2]],
                    hw[rows[j + 3]],
                )
                sign0, sign1, sign2, sign3 = signs[j], signs[j + 1], signs[j + 2], signs[j + 3]
                for s in range(n):
                    change[s] += (sign0 * _widen(row0[s]) + sign1 * _widen(row1[s])) + (
                        sign2 * _widen(row2[s]) + sign3 * _widen(row3[s])
                    )
                j += 4
            while j < k:
                row0 = hw[rows[j]]
                sign0 = signs[j]
                for s in range(n):
                    change[s] += sign0 * _widen(row0[s])
                j += 1
            total = np.float32(0.0)
            for s in range(n):
                total += change[s] * (twice_z[s] + change[s])
            out[c] = lin + 0.5 / n * (parent_square + total)
    return out, bad.sum()
