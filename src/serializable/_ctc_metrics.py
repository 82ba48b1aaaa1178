"""Error rates for sequence outputs: `edit_distance`, `CharacterErrorRate`,
`WordErrorRate`.

Same padding convention as the CTC loss: sequences are `(B, L)` ints, and
everything from the first `pad_value` on is padding (any negative value counts
as padding too, so a decoder's `-1` fill never counts as a token whatever
`pad_value` is). Everything runs on `keras.ops`, so the metrics work inside a
compiled train or test step on every backend.

Two implementations of the Levenshtein distance, both in O(B * (L + T))
memory:

* concrete inputs (NumPy, CPU torch, JAX or eager TensorFlow arrays: every
  eager call, and metric updates outside a compiled step) run Myers'
  bit-parallel algorithm (Hyyroe's block version) in NumPy, vectorized over
  the batch: one pass per hypothesis position, a few uint64 operations per
  64 truth labels;
* symbolic inputs (inside `tf.function` / `jax.jit`) run a `keras.ops`
  dynamic programme walked along anti-diagonals: every cell of one
  anti-diagonal depends only on the two before it, so each of the (at most
  `L + T`) loop steps is a handful of vectorised ops over the whole batch.
"""

from __future__ import annotations

import functools
from typing import Any

import keras
import numpy as np
from keras import ops

from . import _backends
from ._bases import SerializableMetric

# Word ids are two polynomial hashes packed into one int: (modulus, base)
# pairs whose products never overflow. In int64, two 31-bit primes make a
# collision between different words about as likely as a random 62-bit clash;
# where the backend has no int64 (JAX without x64), two 15.5-bit primes keep
# every product within int32 (a 31-bit clash).
_HASH_64 = ((2_147_483_647, 1_000_003), (2_147_483_629, 998_244_353))
_HASH_32 = ((46_337, 31_337), (46_327, 27_183))
# `_exact_cumsum` sums 11-bit digits in int32, exact for rows of up to 2**20
# labels; with the int32 moduli the row's hash sum itself must stay in int32.
_DIGIT_BITS = 11
_MAX_ROW = {
    "int64": 1 << (31 - _DIGIT_BITS),
    "int32": (2**31 - 1) // max(modulus for modulus, _ in _HASH_32),
}


@functools.cache
def _int_dtype() -> str:
    """int64 where the backend has it; JAX without x64 silently gives int32."""
    probe = ops.convert_to_tensor(np.zeros((1,), dtype="int64"))
    return keras.backend.standardize_dtype(probe.dtype)


def _sequence_lengths(values: Any, pad_value: int) -> Any:
    """Tokens before the first padding entry (a `pad_value` or a negative)."""
    token = ops.logical_and(ops.not_equal(values, pad_value), values >= 0)
    return ops.sum(ops.cumprod(ops.cast(token, "int32"), axis=1), axis=1)


def _check_rank(value: Any, name: str, where: str) -> None:
    if len(value.shape) != 2:
        message = (
            f"{where} argument '{name}' must be (batch, length) ints padded past "
            f"each sequence's end. Received: {name} with shape "
            f"{tuple(value.shape)}. Pad the sequences to a common length (one row "
            "per sample), e.g. the output of a CTC decoder."
        )
        raise ValueError(message)


def _check_batch(truth: Any, hypothesis: Any, where: str) -> None:
    a, b = truth.shape[0], hypothesis.shape[0]
    if a is not None and b is not None and a != b:
        message = (
            f"{where}: the truth and hypothesis batches must have one row per "
            f"sample each. Received: {a} truth rows and {b} hypothesis rows. "
            "Pass the same batch to both."
        )
        raise ValueError(message)


def _check_int(value: Any, name: str, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        message = (
            f"{where} argument '{name}' must be an int label value. Received: "
            f"{name}={value!r} (type {type(value).__name__}). Pass the integer "
            "that marks it in the label sequences."
        )
        raise TypeError(message)


def _as_int_sequences(value: Any) -> Any:
    # The widest int, so that WordErrorRate's packed word ids compare exactly.
    return ops.cast(ops.convert_to_tensor(value), _int_dtype())


def edit_distance(
    truth: Any,
    hypothesis: Any,
    *,
    pad_value: int = -1,
    normalize: bool = False,
) -> Any:
    """Compute the Levenshtein distance between padded int sequences.

    Each row of `truth` and `hypothesis` is one sequence; everything from its
    first `pad_value` on is padding, and so is any negative value. Insertions,
    deletions and substitutions each cost 1. Uses `keras.ops` only, so it runs
    eagerly and inside compiled functions on every backend.

    Args:
        truth: int `(B, L)` reference sequences.
        hypothesis: int `(B, T)` sequences to score, e.g. decoded outputs.
        pad_value: the padding value of both.
        normalize: divide each distance by its truth length. An empty truth
            divides by 1 instead, so `0/0 = 0` and `x/0 = x` (every inserted
            token counts in full) and the result is always finite.

    Returns:
        float32 `(B,)` distances.

    Raises:
        ValueError: if an input is not rank 2, or the batch sizes differ.
        TypeError: if `pad_value` is not an int.

    Example:

    ```python
    import numpy as np
    from serializable.ctc import edit_distance

    truth = np.array([[1, 2, 3, -1], [4, 4, -1, -1]])
    hypothesis = np.array([[1, 3, -1], [4, 4, 5]])
    edit_distance(truth, hypothesis)  # [1., 1.]
    edit_distance(truth, hypothesis, normalize=True)  # [0.333, 0.5]
    ```
    """
    _check_int(pad_value, "pad_value", "edit_distance")
    return _edit_distance(truth, hypothesis, pad_value, normalize, "edit_distance")


def _edit_distance(
    truth: Any, hypothesis: Any, pad_value: int, normalize: bool, where: str
) -> Any:
    truth = _as_int_sequences(truth)
    hypothesis = _as_int_sequences(hypothesis)
    _check_rank(truth, "truth", where)
    _check_rank(hypothesis, "hypothesis", where)
    _check_batch(truth, hypothesis, where)
    n = _sequence_lengths(truth, pad_value)
    arrays = _host_arrays(truth, hypothesis, n)
    if arrays is not None:
        truth_np, hypothesis_np, lengths_np = arrays
        distance_np = levenshtein_numpy(truth_np, hypothesis_np, lengths_np, pad_value)
        distance = ops.convert_to_tensor(distance_np.astype("float32"))
    else:
        m = _sequence_lengths(hypothesis, pad_value)
        distance = ops.cast(_levenshtein(truth, hypothesis, n, m), "float32")
    if normalize:
        truth_length = ops.cast(n, "float32")
        distance = distance / ops.where(truth_length > 0, truth_length, 1.0)
    return distance


def _host_arrays(*values: Any) -> list[np.ndarray] | None:
    """The values as NumPy arrays when they are concrete and on the host.

    Symbolic tensors (a `tf.function` graph, a `jax.jit` trace, a Keras
    symbolic input) and device arrays NumPy cannot read give None.
    """
    try:
        arrays = [np.asarray(value) for value in values]
    except Exception:
        return None
    return None if any(a.dtype == object for a in arrays) else arrays


_WORD = 64
_ONE = np.uint64(1)
_HIGH = np.uint64(_WORD - 1)


def levenshtein_numpy(
    truth: np.ndarray, hypothesis: np.ndarray, truth_length: np.ndarray, pad_value: int
) -> np.ndarray:
    """Levenshtein distances of padded int rows, in NumPy, O(B * (L + T)) memory.

    Myers' bit-parallel algorithm in Hyyroe's block form: the truth is the
    pattern, 64 labels per uint64 word, and each hypothesis position advances
    every word's vertical deltas for the whole batch at once. A row's
    distance is `n` plus the horizontal deltas of its last truth row, summed
    over its hypothesis positions.

    Args:
        truth: int `(B, L)`.
        hypothesis: int `(B, T)`, padded like `truth`.
        truth_length: int `(B,)` truth labels before the padding.
        pad_value: the padding value (any negative value is padding too).

    Returns:
        int64 `(B,)` distances.
    """
    truth = np.asarray(truth)
    hypothesis = np.asarray(hypothesis)
    n = np.asarray(truth_length).astype(np.int64).reshape(-1)
    token = (hypothesis != pad_value) & (hypothesis >= 0)
    m = np.cumprod(token, axis=1).sum(axis=1) if token.size else np.zeros_like(n)
    batch = truth.shape[0]
    longest = int(n.max(initial=0))
    if batch == 0 or longest == 0:
        return m.astype(np.int64)
    blocks = -(-longest // _WORD)
    width = blocks * _WORD
    pattern = np.full((batch, width), -1, dtype=np.int64)
    pattern[:, :longest] = truth[:, :longest]
    # Truth padding never matches: -1 there, and hypothesis padding is never read.
    pattern[np.arange(width)[None, :] >= n[:, None]] = -1
    last_block = np.maximum(n - 1, 0) // _WORD
    last_bit = (np.maximum(n - 1, 0) % _WORD).astype(np.uint64)
    positive = [np.zeros(batch, dtype=np.uint64) + ~np.uint64(0) for _ in range(blocks)]
    negative = [np.zeros(batch, dtype=np.uint64) for _ in range(blocks)]
    score = n.copy()
    hyp = hypothesis.astype(np.int64, copy=False)
    for t in range(int(m.max(initial=0))):
        active = t < m
        label = np.where(active, hyp[:, t], -2)[:, None]
        matches = np.packbits(pattern == label, axis=1, bitorder="little")
        matches = matches.view("<u8")  # (B, blocks): bit i of word w is label 64w+i
        carry = np.ones(batch, dtype=np.int64)  # row 0: D[0, j] = j, delta +1
        for w in range(blocks):
            eq = matches[:, w]
            pv, mv = positive[w], negative[w]
            xv = eq | mv
            eq = eq | (carry < 0).astype(np.uint64)
            xh = (((eq & pv) + pv) ^ pv) | eq
            ph = mv | ~(xh | pv)
            mh = pv & xh
            here = last_block == w
            if here.any():
                up = (ph >> last_bit) & _ONE
                down = (mh >> last_bit) & _ONE
                delta = up.astype(np.int64) - down.astype(np.int64)
                score += np.where(here & active, delta, 0)
            top_p = (ph >> _HIGH).astype(np.int64)
            top_m = (mh >> _HIGH).astype(np.int64)
            ph = (ph << _ONE) | (carry > 0).astype(np.uint64)
            mh = (mh << _ONE) | (carry < 0).astype(np.uint64)
            positive[w] = mh | ~(xv | ph)
            negative[w] = ph & xv
            carry = top_p - top_m
    return np.where(n == 0, m, score).astype(np.int64)


def _levenshtein(truth: Any, hypothesis: Any, n: Any, m: Any) -> Any:
    """Distances between the first `n` of `truth` and the first `m` of `hyp`.

    `D[i, j]` is the distance between `truth[:i]` and `hypothesis[:j]`. Step `d`
    computes the anti-diagonal `i + j = d`, indexed by `i`, from the two before
    it; a row's answer is kept when `d == n + m`. Cells with `j < 0` start
    "unreachable" and stay above every real distance, so the first column
    (`j == 0`) needs no special case; the first row (`i == 0`) has only its
    left neighbour. Cells with `j > T` hold junk that no valid cell reads.
    """
    batch, rows = ops.shape(truth)[0], ops.shape(truth)[1]
    # One padding column, so a zero-width hypothesis can still be gathered from.
    filler = ops.full((batch, 1), -1, dtype=hypothesis.dtype)
    hypothesis = ops.concatenate([hypothesis, filler], axis=1)
    columns = ops.shape(hypothesis)[1]  # T + 1
    # mismatch at step d: truth[b, i - 1] != hypothesis[b, d - i - 1] for
    # i = 1..L, gathered per step: O(B * L) memory, not O(B * L * (L + T)).
    i = ops.arange(1, rows + 1, dtype="int32")

    def mismatch(d: Any) -> Any:
        pairs = ops.take(hypothesis, ops.clip(d - i - 1, 0, columns - 1), axis=1)
        return ops.cast(ops.not_equal(truth, pairs), "int32")

    big = 1 << 24  # "unreachable"; only ever lands in junk cells
    unreachable = ops.full((batch, 1), big, dtype="int32")
    never = ops.full((batch, rows + 1), big, dtype="int32")
    first = ops.concatenate([ops.zeros((batch, 1), "int32"), never[:, 1:]], axis=1)
    # The answer cell (n, m) of each row is kept when its diagonal goes by;
    # cheaper per step than gathering it (which matters when run eagerly).
    corner = ops.equal(ops.arange(rows + 1, dtype="int32")[None, :], n[:, None])
    wanted = ops.where(corner, (n + m)[:, None], -1)

    def step(d: Any, state: Any) -> Any:
        before, previous, kept = state
        down = ops.minimum(
            previous[:, :-1] + 1,  # from (i - 1, j): skip a truth token
            before[:, :-1] + mismatch(d),  # from (i - 1, j - 1): (mis)match
        )
        down = ops.concatenate([unreachable, down], axis=1)
        current = ops.minimum(down, previous + 1)  # from (i, j - 1): insertion
        kept = ops.where(ops.equal(wanted, d), current, kept)
        return previous, current, kept

    # `first` is the whole d = 0 diagonal, so it is right for n + m == 0 too.
    # Stop at the longest pair actually present, not at the padded widths.
    last = ops.max(n + m, initial=0) + 1
    _, _, kept = ops.fori_loop(1, last, step, (never, first, first))
    return ops.sum(ops.where(corner, kept, 0), axis=1)


def _powers(base: int, modulus: int, count: Any, bits: int) -> Any:
    """`base ** k % modulus` for `k = 0 .. count - 1`, by binary exponentiation."""
    k = ops.arange(count, dtype=_int_dtype())
    result = ops.ones_like(k)
    factor = base % modulus
    for bit in range(bits):
        use = ops.equal(ops.floor_divide(k, 1 << bit) % 2, 1)
        result = ops.where(use, result * factor % modulus, result)
        factor = factor * factor % modulus
    return result


def _exact_cumsum(term: Any) -> Any:
    """Cumulative sum along axis 1 of ints in `[0, 2**31)`, exact in their dtype.

    `keras.ops.cumsum` cannot be trusted with int64: off TensorFlow, Keras's
    dtype rules map 64-bit types to 32-bit, so on torch (and JAX with x64) it
    returns an int32 sum that wraps around. So each term is split into three
    11-bit digits, each digit column is summed in int32 (exact while a row
    holds fewer than `2**20` terms) and the partial sums are recombined in the
    terms' own dtype with plain arithmetic, which keeps it.
    """
    dtype = keras.backend.standardize_dtype(term.dtype)
    digit = 1 << _DIGIT_BITS
    total = None
    for shift in (2 * _DIGIT_BITS, _DIGIT_BITS, 0):
        column = ops.cast(term // (1 << shift) % digit, "int32")
        partial = ops.cast(ops.cumsum(column, axis=1), dtype)
        total = partial if total is None else total * digit + partial
    return total


def _first_columns(mask: Any, position: Any, width: Any) -> Any:
    """The positions where `mask` holds, in order, moved to the front of a row."""
    return ops.argsort(ops.where(mask, position, position + width), axis=1)


def _word_ids(values: Any, pad_value: int, separator: int) -> Any:
    """Replace each word (a run of non-separator tokens) by a hash id.

    Returns `(B, ceil(L / 2))` ints: each row's word ids in order, then -1.
    A word's id packs two polynomial hashes of its labels (first label lowest
    power), each summed over the whole row and then shifted back by the word's
    start, so no loop over positions is needed.
    """
    width = ops.shape(values)[1]
    longest = _MAX_ROW[_int_dtype()]
    if isinstance(width, int) and width > longest:
        message = (
            f"WordErrorRate: label rows must hold at most {longest} labels on the "
            f"{_backends.name()!r} backend, for word ids to be exact. "
            f"Received: rows of {width} labels. Score shorter segments."
        )
        raise ValueError(message)
    length = _sequence_lengths(values, pad_value)
    position = ops.arange(width, dtype="int32")[None, :]
    token = ops.logical_and(position < length[:, None], values != separator)
    nothing = ops.zeros_like(token[:, :1])
    preceding = ops.concatenate([nothing, token[:, :-1]], axis=1)
    following = ops.concatenate([token[:, 1:], nothing], axis=1)
    word_start = ops.logical_and(token, ops.logical_not(preceding))
    starts = _first_columns(word_start, position, width)
    ends = _first_columns(
        ops.logical_and(token, ops.logical_not(following)), position, width
    )
    # Words are separated, so a row holds at most ceil(L / 2) of them.
    most = (width + 1) // 2
    starts, ends = starts[:, :most], ends[:, :most]
    bits = max(1, (width - 1).bit_length()) if isinstance(width, int) else 31
    packed = None
    moduli = _HASH_64 if _int_dtype() == "int64" else _HASH_32
    for modulus, base in moduli:
        power = _powers(base, modulus, width, bits)
        inverse = _powers(pow(base, -1, modulus), modulus, width, bits)
        # Labels shifted to >= 1, so that a leading 0 still changes the hash.
        term = ops.where(token, (values + 1) % modulus * power[None, :] % modulus, 0)
        inclusive = _exact_cumsum(term)  # < L * modulus: no overflow
        exclusive = inclusive - term
        total = ops.take_along_axis(inclusive, ends, axis=1) - ops.take_along_axis(
            exclusive, starts, axis=1
        )
        digest = total % modulus * ops.take(inverse, starts) % modulus
        packed = digest if packed is None else packed * modulus + digest
    words = ops.sum(ops.cast(word_start, "int32"), axis=1)
    return ops.where(position[:, :most] < words[:, None], packed, -1)


def _strip_labels(values: Any, pad_value: int, labels: tuple[int, ...]) -> Any:
    """Remove leading and trailing `labels` from each padded row (like `str.strip`).

    The kept labels move to the front of the row; the rest becomes -1.
    """
    width = ops.shape(values)[1]
    length = _sequence_lengths(values, pad_value)
    position = ops.arange(width, dtype="int32")[None, :]
    stripped = ops.zeros_like(values, dtype="bool")
    for label in labels:
        stripped = ops.logical_or(stripped, ops.equal(values, label))
    kept = ops.logical_and(position < length[:, None], ops.logical_not(stripped))
    first = ops.min(ops.where(kept, position, width), axis=1)
    end = ops.max(ops.where(kept, position + 1, 0), axis=1)
    new_length = ops.maximum(end - first, 0)
    source = ops.minimum(position + first[:, None], ops.maximum(width - 1, 0))
    shifted = ops.take_along_axis(values, source, axis=1)
    return ops.where(position < new_length[:, None], shifted, -1)


def _sample_weights(sample_weight: Any, batch: Any, where: str) -> Any:
    if sample_weight is None:
        return ops.ones((batch,), dtype="float32")
    weight = ops.cast(ops.convert_to_tensor(sample_weight), "float32")
    if len(weight.shape) == 2 and weight.shape[-1] == 1:
        weight = ops.squeeze(weight, axis=-1)
    if len(weight.shape) == 0:
        return weight + ops.zeros((batch,), dtype="float32")
    if len(weight.shape) != 1:
        message = (
            f"{where} argument 'sample_weight' must hold one weight per sample: "
            f"shape (batch,) or (batch, 1). Received: sample_weight with shape "
            f"{tuple(weight.shape)}. Pass one weight per sequence."
        )
        raise ValueError(message)
    return weight


class _ErrorRate(SerializableMetric, register=False):
    """Accumulates weighted edits and weighted truth lengths over batches."""

    def __init__(self, pad_value: int = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _check_int(pad_value, "pad_value", type(self).__name__)
        self.pad_value = pad_value
        self.edits = self.add_variable(
            shape=(), initializer="zeros", dtype="float32", name="edits"
        )
        self.length = self.add_variable(
            shape=(), initializer="zeros", dtype="float32", name="length"
        )

    def _sequences(self, y_true: Any, y_pred: Any) -> tuple[Any, Any, int]:
        """The (truth, hypothesis, pad value) pair whose distance is counted."""
        raise NotImplementedError

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        where = type(self).__name__
        y_true = _as_int_sequences(y_true)
        y_pred = _as_int_sequences(y_pred)
        _check_rank(y_true, "y_true", where)
        _check_rank(y_pred, "y_pred", where)
        _check_batch(y_true, y_pred, where)
        truth, hypothesis, pad_value = self._sequences(y_true, y_pred)
        distance = _edit_distance(truth, hypothesis, pad_value, False, where)
        length = ops.cast(_sequence_lengths(truth, pad_value), "float32")
        weight = _sample_weights(sample_weight, ops.shape(y_true)[0], where)
        self.edits.assign_add(ops.sum(distance * weight))
        self.length.assign_add(ops.sum(length * weight))

    def result(self) -> Any:
        # Tensors, not Variables: recent JAX refuses Variables in ops.where.
        edits = ops.convert_to_tensor(self.edits)
        length = ops.convert_to_tensor(self.length)
        # No truth at all: report the edits themselves (x/0 = x, 0/0 = 0).
        return edits / ops.where(length > 0, length, 1.0)


class CharacterErrorRate(_ErrorRate, package="serializable"):
    """Character error rate: label edits per truth label, over all batches seen.

    `y_true` is the padded label batch `(B, L)` and `y_pred` the padded decoded
    sequences `(B, T)`, e.g. the output of a CTC decoder; both are padded with
    `pad_value` (and any negative value counts as padding). The result is
    `sum(edit distances) / sum(truth lengths)`, each weighted by
    `sample_weight`; with no truth labels at all it is the edit count itself.
    It can exceed 1 when the hypotheses hold many insertions.

    `strip` removes the given labels from both ends of every truth and
    hypothesis before counting, like Python's `str.strip`. With the space's
    label index (`strip=space`, or a list with every whitespace label) the
    result is jiwer's `cer` on the same strings: jiwer strips leading and
    trailing whitespace before it counts, so `" a"` against `"a"` is 0 edits
    for jiwer and 1 edit over 2 labels without `strip`.

    Args:
        pad_value: the padding value of `y_true` and `y_pred`.
        strip: a label, or a list of labels, removed from both ends of every
            sequence before counting; None (the default) counts every label.
        name: the metric's name in logs.
        **kwargs: `dtype` as for any Keras metric.

    Raises:
        TypeError: if `pad_value` or a `strip` label is not an int.
        ValueError: from `update_state`, for inputs that are not rank 2.

    Example:

    ```python
    import numpy as np
    from serializable.ctc import CharacterErrorRate

    cer = CharacterErrorRate()
    cer.update_state(np.array([[1, 2, 3, -1]]), np.array([[1, 3, -1]]))
    float(cer.result())  # 1 edit / 3 labels = 0.333
    jiwer_like = CharacterErrorRate(strip=0)  # 0 is the space's label
    ```
    """

    def __init__(
        self,
        pad_value: int = -1,
        strip: int | list[int] | tuple[int, ...] | None = None,
        name: str = "cer",
        **kwargs: Any,
    ) -> None:
        super().__init__(pad_value=pad_value, name=name, **kwargs)
        labels = [] if strip is None else strip
        if not isinstance(labels, (list, tuple)):
            labels = [labels]
        for label in labels:
            _check_int(label, "strip", "CharacterErrorRate")
        self.strip = (
            None
            if strip is None
            else (labels[0] if isinstance(strip, int) else list(labels))
        )
        self._strip = tuple(labels)

    def _sequences(self, y_true: Any, y_pred: Any) -> tuple[Any, Any, int]:
        if not self._strip:
            return y_true, y_pred, self.pad_value
        truth = _strip_labels(y_true, self.pad_value, self._strip)
        hypothesis = _strip_labels(y_pred, self.pad_value, self._strip)
        return truth, hypothesis, -1


class WordErrorRate(_ErrorRate, package="serializable"):
    """Word error rate: word edits per truth word, over all batches seen.

    Words are runs of labels other than `separator` (repeated, leading and
    trailing separators delimit nothing). Inputs are as for
    `CharacterErrorRate`. Each word is compared through a 62-bit hash of its
    labels (31-bit on JAX without x64), so two different words are told
    apart with near certainty.

    Args:
        separator: the label that separates words (e.g. the space's index).
        pad_value: the padding value of `y_true` and `y_pred`.
        name: the metric's name in logs.
        **kwargs: `dtype` as for any Keras metric.

    Raises:
        TypeError: if `separator` or `pad_value` is not an int.
        ValueError: if `separator` is negative or equals `pad_value` (it would
            be read as padding), and from `update_state` for inputs that are
            not rank 2 or rows too long for exact word ids (more than 2**20
            labels; 46,344 on JAX without x64).

    Example:

    ```python
    import numpy as np
    from serializable.ctc import WordErrorRate

    wer = WordErrorRate(separator=0)
    truth = np.array([[5, 6, 0, 7, 0, 8, 8]])  # three words
    hypothesis = np.array([[5, 6, 0, 7, 7, 0, 8, 8]])  # the middle one wrong
    wer.update_state(truth, hypothesis)
    float(wer.result())  # 1 / 3
    ```
    """

    def __init__(
        self, separator: int, pad_value: int = -1, name: str = "wer", **kwargs: Any
    ) -> None:
        super().__init__(pad_value=pad_value, name=name, **kwargs)
        _check_int(separator, "separator", "WordErrorRate")
        if separator < 0 or separator == pad_value:
            message = (
                "WordErrorRate argument 'separator' must be a label value that is "
                f"not padding: expected a non-negative int other than pad_value="
                f"{pad_value}. Received: separator={separator}. Pass the label "
                "index of the word separator (e.g. the space)."
            )
            raise ValueError(message)
        self.separator = separator

    def _sequences(self, y_true: Any, y_pred: Any) -> tuple[Any, Any, int]:
        truth = _word_ids(y_true, self.pad_value, self.separator)
        hypothesis = _word_ids(y_pred, self.pad_value, self.separator)
        return truth, hypothesis, -1
