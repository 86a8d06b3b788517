"""Numba kernels that score the children of an incremental evaluation.

:func:`_score_children` scores whole children in parallel, one per thread at a time, each with
:func:`_score_one`: the layer-by-layer update of the parent's pre-activations described in
:mod:`masksearch.evaluators.incremental` (the rows of flipped weights, :func:`_flip_rows`; the
change of changed inputs times the child's weights, :func:`_delta_layer`; or a recomputation
of the layer, :func:`_dense_layer`), then :func:`_cross_entropy` of the output layer. Layers
are stored features × samples, so every inner loop runs over contiguous samples.

:func:`_gene_on` (the packed bit order) comes from
:mod:`masksearch.evaluators._packed_mask_kernels`. Numba's on-disk cache (``cache=True``)
notices edits to this file only: after changing :func:`_gene_on`, delete the Numba cache files
(``*.nbi``, ``*.nbc`` under ``__pycache__``) so that these kernels are compiled again.
"""

from __future__ import annotations

import numba
import numpy as np

from masksearch.evaluators._packed_mask_kernels import _gene_on

# weights summed into a row per pass of the layer update (the code unrolls exactly four)
_GROUP = 4
# reassociation lets LLVM vectorise; no flag assumes away inf or NaN
_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}
# float32 exp: Cephes' expf (range reduction by ln 2 split in two, degree-5 polynomial, 2^n from
# the exponent bits), written out so that LLVM vectorises it (numba's exp is a libm call a
# sample); max relative error ~3e-7 on [-87, 0]
_LOG2E = np.float32(1.4426950408889634)
_LN2_HIGH = np.float32(0.693359375)
_LN2_LOW = np.float32(-2.12194440e-4)
# below this exp(x) would leave the float32 normals; against a sum >= 1 it is nothing anyway
_EXP_FLOOR = np.float32(-87.0)
# samples whose softmax sums (each in [1, classes]) are multiplied before one log is taken
_LOG_CHUNK = 16

_NO_POINTERS = np.zeros(1, dtype=np.int64)
_NO_COLUMNS = np.zeros(0, dtype=np.int64)
_NO_VALUES = np.zeros(0, dtype=np.float32)


_STATE_PARENT = 0  # the layer's child pre-activations are the parent's
_STATE_ROWS = 1  # only the rows in ``changed`` differ (held in the rows scratch)
_STATE_DENSE = 2  # the whole layer is in the dense scratch


@numba.njit(inline="always")
def _act(value, relu):  # pragma: no cover - compiled
    return max(value, np.float32(0.0)) if relu else value


@numba.njit(parallel=True, cache=True, fastmath=_FASTMATH)
def _score_children(
    z,
    indices,
    sources,
    targets,
    words,
    flip_pointers,
    flips,
    kept,
    weights,
    bias,
    row_start,
    gene_start,
    relu,
    inputs_t,
    labels,
    smoothing,
    rows_scratch,
    dense_scratch,
    workers,
    block,
    scatter_cost,
):  # pragma: no cover - compiled
    """(Σ cross-entropy, # correct) of children ``indices`` of the plan, child ``c`` from the
    activations in slot ``sources[c]``; ``workers`` threads score whole children, each with its
    own scratch, so a child's arithmetic does not depend on the thread count. A child whose
    ``targets[c]`` is >= 0 also has its activations written to that slot (one child a call)."""
    n = len(indices)
    loss = np.zeros(n)
    hits = np.zeros(n, dtype=np.int64)
    for worker in numba.prange(workers):
        for c in range(worker, n, workers):
            i = indices[c]
            loss[c], hits[c] = _score_one(
                z,
                sources[c],
                targets[c],
                words[i],
                flips[flip_pointers[i] : flip_pointers[i + 1]],
                kept[i],
                weights,
                bias,
                row_start,
                gene_start,
                relu,
                inputs_t,
                labels,
                smoothing,
                rows_scratch[worker],
                dense_scratch[worker],
                block,
                scatter_cost,
            )
    return loss, hits


@numba.njit(cache=True, fastmath=_FASTMATH)
def _score_one(
    z,
    source,
    target,
    words,
    flips,
    kept,
    weights,
    bias,
    row_start,
    gene_start,
    relu,
    inputs_t,
    labels,
    smoothing,
    rows_buffer,
    dense_buffer,
    block,
    scatter_cost,
):  # pragma: no cover - compiled
    """One child, layer by layer (see the module docstring); (Σ cross-entropy, # correct)."""
    n_layers = len(weights)
    parent = z[source]
    widest = 0
    for layer in range(n_layers):
        widest = max(widest, row_start[layer + 1] - row_start[layer])
    changed = np.empty(widest, dtype=np.int64)
    n_changed = 0
    state = _STATE_PARENT
    if target >= 0:
        z[target] = parent
    for layer in range(n_layers):
        weight = weights[layer]
        out, n_in = weight.shape
        first_row = row_start[layer]
        start = gene_start[layer]
        low = high = 0
        if start >= 0:
            low = np.searchsorted(flips, start)
            high = np.searchsorted(flips, start + out * n_in)
        mine = flips[low:high]
        source_relu = relu[layer - 1] if layer > 0 else False
        parent_input = inputs_t if layer == 0 else parent[row_start[layer - 1] : first_row]
        z_parent = parent[first_row : first_row + out]
        result = dense_buffer[first_row : first_row + out]
        recompute = layer + 1 == n_layers or state == _STATE_DENSE
        pair_pointers = _NO_POINTERS
        pair_columns = _NO_COLUMNS
        pair_values = _NO_VALUES
        if not recompute and state == _STATE_ROWS:
            pair_pointers, pair_columns, pair_values = _pairs(
                weight, words, start, changed[:n_changed]
            )
            update = scatter_cost * len(pair_columns) + n_changed
            recompute = update > out * n_in
        if recompute:
            if state == _STATE_ROWS:
                # the child's input: the parent's with the changed rows replaced
                child_input = dense_buffer[row_start[layer - 1] : first_row]
                child_input[:] = parent_input
                for i in range(n_changed):
                    child_input[changed[i]] = rows_buffer[row_start[layer - 1] + i]
            elif state == _STATE_DENSE:
                child_input = dense_buffer[row_start[layer - 1] : first_row]
            else:
                child_input = parent_input
            _dense_layer(
                weight, words, start, child_input, source_relu, bias[first_row:], result, block
            )
            state = _STATE_DENSE
        elif state == _STATE_ROWS:
            _delta_layer(
                z_parent,
                parent_input,
                source_relu,
                changed[:n_changed],
                rows_buffer[row_start[layer - 1] :],
                pair_pointers,
                pair_columns,
                pair_values,
                weight,
                words,
                start,
                mine,
                kept[first_row : first_row + out],
                bias[first_row : first_row + out],
                result,
                block,
            )
            state = _STATE_DENSE
        elif len(mine):
            n_changed = _flip_rows(
                z_parent,
                parent_input,
                source_relu,
                weight,
                words,
                start,
                mine,
                kept[first_row : first_row + out],
                bias[first_row : first_row + out],
                changed,
                rows_buffer[first_row:],
            )
            state = _STATE_ROWS
        if target >= 0:
            written = z[target, first_row : first_row + out]
            if state == _STATE_DENSE:
                written[:] = result
            elif state == _STATE_ROWS and len(mine):
                for i in range(n_changed):
                    written[changed[i]] = rows_buffer[first_row + i]
    return _cross_entropy(
        dense_buffer[row_start[n_layers - 1] :], relu[n_layers - 1], labels, smoothing
    )


@numba.njit(cache=True)
def _pairs(weight, words, start, changed):  # pragma: no cover - compiled
    """The child's nonzero weights from the changed inputs, grouped by output row (CSR).

    Returns (pointers into the lists per row, positions in ``changed``, weights); ``start`` is
    where the layer's genes begin in the packed mask ``words`` (-1: the layer is not pruned).
    """
    out, n_in = weight.shape
    pointers = np.zeros(out + 1, dtype=np.int64)
    columns = np.empty(len(changed) * out, dtype=np.int64)
    values = np.empty(len(changed) * out, dtype=np.float32)
    count = 0
    for o in range(out):
        for c in range(len(changed)):
            column = changed[c]
            if start >= 0 and not _gene_on(words, start + o * n_in + column):
                continue
            value = weight[o, column]
            if value != 0:
                columns[count] = c
                values[count] = value
                count += 1
        pointers[o + 1] = count
    return pointers, columns[:count], values[:count]


@numba.njit(inline="always")
def _flip_delta(weight, words, start, gene):  # pragma: no cover - compiled
    """(row, column, child weight - parent weight) of a flipped gene."""
    n_in = weight.shape[1]
    row = (gene - start) // n_in
    column = (gene - start) - row * n_in
    value = weight[row, column]
    return row, column, value if _gene_on(words, gene) else -value


@numba.njit(cache=True, fastmath=_FASTMATH)
def _flip_rows(
    z_layer, source, source_relu, weight, words, start, flips, kept, bias, changed, out
):  # pragma: no cover - compiled
    """Rows of a layer whose only change is flipped weights (its inputs unchanged).

    The flipped rows (sorted, as the flips are) go to ``changed`` and their values to ``out``:
    ``z_layer[row] + Σ_f delta_f · act(source[column_f])``; a row left without weights is its
    bias. Returns how many rows changed.
    """
    n_samples = z_layer.shape[1]
    n_changed = 0
    for f in range(len(flips)):
        row, column, delta = _flip_delta(weight, words, start, flips[f])
        if n_changed == 0 or changed[n_changed - 1] != row:
            changed[n_changed] = row
            out[n_changed] = z_layer[row]
            n_changed += 1
        target = out[n_changed - 1]
        values = source[column]
        for s in range(n_samples):
            target[s] += delta * _act(values[s], source_relu)
    for i in range(n_changed):
        if kept[changed[i]] == 0:
            out[i] = bias[changed[i]]
    return n_changed


@numba.njit(cache=True, fastmath=_FASTMATH)
def _delta_layer(
    z_layer,
    parent_input,
    source_relu,
    changed,
    changed_values,
    pair_pointers,
    pair_columns,
    pair_values,
    weight,
    words,
    start,
    flips,
    kept,
    bias,
    out,
    block,
):  # pragma: no cover - compiled
    """A whole layer from the parent's: changed inputs times the child's weights, plus flips.

    ``changed_values[c]`` is the child's pre-activation of input ``changed[c]`` (the parent's is
    ``parent_input[changed[c]]``). Row by row within a block of samples, so that the row being
    summed stays in the L1 cache, four weights at a time (one load and store of the row per
    four multiply-adds; the parent's row is read by the first four); an input whose activation
    did not move on a block of samples is skipped there.
    """
    n_samples = z_layer.shape[1]
    zero = np.float32(0.0)
    width = min(block, n_samples)
    n_changed = len(changed)
    # an extra all-zero row (index n_changed) pads the last group of four
    delta = np.zeros((n_changed + 1, width), dtype=np.float32)
    moved = np.zeros(n_changed, dtype=np.bool_)
    group = np.empty(_GROUP, dtype=np.int64)
    group_values = np.empty(_GROUP, dtype=np.float32)
    for low in range(0, n_samples, width):
        high = min(low + width, n_samples)
        size = high - low
        for c in range(n_changed):
            new_values = changed_values[c, low:high]
            old_values = parent_input[changed[c], low:high]
            row_delta = delta[c]
            count = 0
            for s in range(size):
                new = new_values[s]
                old = old_values[s]
                if source_relu:
                    new = max(new, zero)
                    old = max(old, zero)
                row_delta[s] = new - old
                count += new != old
            moved[c] = count > 0
        for o in range(z_layer.shape[0]):
            target = out[o, low:high]
            source = z_layer[o, low:high]
            e = pair_pointers[o]
            first = True
            while True:
                n_group = 0
                while e < pair_pointers[o + 1] and n_group < _GROUP:
                    if moved[pair_columns[e]]:
                        group[n_group] = pair_columns[e]
                        group_values[n_group] = pair_values[e]
                        n_group += 1
                    e += 1
                if n_group == 0:
                    break
                for k in range(n_group, _GROUP):
                    group[k] = n_changed
                    group_values[k] = zero
                d0, d1, d2, d3 = delta[group[0]], delta[group[1]], delta[group[2]], delta[group[3]]
                v0, v1, v2, v3 = group_values[0], group_values[1], group_values[2], group_values[3]
                if first:
                    for s in range(size):
                        step = (v0 * d0[s] + v1 * d1[s]) + (v2 * d2[s] + v3 * d3[s])
                        target[s] = source[s] + step
                    first = False
                else:
                    for s in range(size):
                        target[s] += (v0 * d0[s] + v1 * d1[s]) + (v2 * d2[s] + v3 * d3[s])
            if first:
                target[:] = source
        for f in range(len(flips)):
            row, column, value = _flip_delta(weight, words, start, flips[f])
            target = out[row, low:high]
            values = parent_input[column, low:high]
            for s in range(size):
                target[s] += value * _act(values[s], source_relu)
    for o in range(z_layer.shape[0]):
        if kept[o] == 0:
            out[o] = bias[o]


@numba.njit(cache=True, fastmath=_FASTMATH)
def _dense_layer(
    weight, words, start, source, source_relu, bias, out, block
):  # pragma: no cover - compiled
    """``out = (weight ⊙ child mask) · act(source) + bias`` (features × samples), zero weights
    skipped; ``start`` is where the layer's genes begin in ``words`` (-1: not pruned)."""
    n_samples = source.shape[1]
    n_out, n_in = weight.shape
    zero = np.float32(0.0)
    # per input, the outputs its child weights reach: an input that reaches none is skipped
    # (most, in a sparse layer), its activation never computed
    reach_rows = np.empty(n_out, dtype=np.int64)
    reach_values = np.empty(n_out, dtype=np.float32)
    width = min(block, n_samples)
    activation = np.empty(width, dtype=np.float32)
    for low in range(0, n_samples, width):
        high = min(low + width, n_samples)
        size = high - low
        for o in range(n_out):
            out[o, low:high] = bias[o]
        for i in range(n_in):
            n_reach = 0
            for o in range(n_out):
                value = weight[o, i]
                if value != zero and (start < 0 or _gene_on(words, start + o * n_in + i)):
                    reach_rows[n_reach] = o
                    reach_values[n_reach] = value
                    n_reach += 1
            if n_reach == 0:
                continue
            values = source[i, low:high]
            if source_relu:
                for s in range(size):
                    activation[s] = max(values[s], zero)
            else:
                activation[:size] = values
            for r in range(n_reach):
                target = out[reach_rows[r], low:high]
                value = reach_values[r]
                for s in range(size):
                    target[s] += value * activation[s]


@numba.njit(cache=True, fastmath=_FASTMATH)
def _cross_entropy(logits, last_relu, labels, smoothing):  # pragma: no cover - compiled
    """(Σ cross-entropy, # correct) of logits stored classes × samples; ``smoothing`` ε > 0
    gives the label-smoothed loss ``log Σ exp − (1 − ε)·z_label − ε·mean(z)``.

    The max-subtracted log-sum-exp is summed in float32 (each term in (0, 1], the sum in
    [1, classes]) and every sample's loss accumulated in float64; the predicted class is the
    first maximal logit, as ``torch.argmax`` picks it. A NaN logit gives a NaN loss.
    """
    n_samples = logits.shape[1]
    width = logits.shape[0]
    # class-outer loops: every pass is a contiguous run over the samples, vectorised
    top = np.empty(n_samples, dtype=np.float32)
    best = np.zeros(n_samples, dtype=np.int32)
    for s in range(n_samples):
        top[s] = _act(logits[0, s], last_relu)
    for o in range(1, width):
        row = logits[o]
        for s in range(n_samples):
            value = _act(row[s], last_relu)
            greater = value > top[s]
            top[s] = value if greater else top[s]
            best[s] = np.int32(o) if greater else best[s]
    total = np.zeros(n_samples, dtype=np.float32)
    mantissa = np.empty(n_samples, dtype=np.float32)
    exponent = np.empty(n_samples, dtype=np.int32)
    power = exponent.view(np.float32)  # 2^n, written as float32 bits
    for o in range(width):
        row = logits[o]
        for s in range(n_samples):
            x = _act(row[s], last_relu) - top[s]
            if x < _EXP_FLOOR:
                x = _EXP_FLOOR
            n = np.floor(x * _LOG2E + np.float32(0.5))
            r = x - n * _LN2_HIGH - n * _LN2_LOW
            p = np.float32(1.9875691500e-4) * r + np.float32(1.3981999507e-3)
            p = p * r + np.float32(8.3334519073e-3)
            p = p * r + np.float32(4.1665795894e-2)
            p = p * r + np.float32(1.6666665459e-1)
            p = p * r + np.float32(5.0000001201e-1)
            mantissa[s] = p * (r * r) + r + np.float32(1.0)
            exponent[s] = (np.int32(n) + np.int32(127)) << np.int32(23)
        for s in range(n_samples):
            total[s] += mantissa[s] * power[s]
    loss = 0.0
    hits = 0
    for s in range(n_samples):
        loss += np.float64(top[s]) - np.float64(_act(logits[labels[s], s], last_relu))
        hits += best[s] == labels[s]
    if smoothing != 0.0:
        # −log p_k = lse − z_k, so the smoothed loss moves ε of the label's logit to the mean
        mean = np.zeros(n_samples, dtype=np.float32)
        for o in range(width):
            row = logits[o]
            for s in range(n_samples):
                mean[s] += _act(row[s], last_relu)
        share = np.float64(smoothing)
        for s in range(n_samples):
            label_logit = np.float64(_act(logits[labels[s], s], last_relu))
            loss += share * (label_logit - np.float64(mean[s]) / width)
    # Σ log(sum) as the log of products of a few sums: one log per chunk, not per sample
    for low in range(0, n_samples, _LOG_CHUNK):
        product = 1.0
        for s in range(low, min(low + _LOG_CHUNK, n_samples)):
            product *= np.float64(total[s])
        loss += np.log(product)
    return loss, hits
