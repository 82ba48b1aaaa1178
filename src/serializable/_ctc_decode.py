"""CTC decoding: `ctc_decode` and the `CTCDecoder` inference layer.

Same conventions as the CTC loss (`_ctc`): batch-major `(B, T, C)` logits or
probabilities, any `blank_index` (negative counts from the end), lengths as
`(B,)`, `(B, 1)`, a Keras mask or the full time axis. Results use Keras's
`keras.ops.ctc_decode` layout: int32 paths `(top_paths, B, T)` padded with -1
and float32 scores `(B, top_paths)`, but scores are always log-probabilities
and the blank is whatever `blank_index` says, for both strategies.

* Greedy decoding is plain `keras.ops`, so it runs compiled on every backend.
* Beam search is a CTC *prefix* beam search. On TensorFlow it runs
  TensorFlow's native decoder (`tensorflow_ops`), inside graphs too; elsewhere it
  runs the NumPy decoder below, eagerly (Keras's own port takes ~35 s at
  B=32, T=200, C=30, width 10; this one a fraction of a second).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from . import _backends
from ._backends import tensorflow_ops
from ._bases import SerializableLayer
from ._ctc import EPSILON, _lengths, _resolve_blank, check_y_pred_rank

STRATEGIES = ("greedy", "beam_search")
IMPLEMENTATIONS = ("auto", "native", "numpy")

# Odd 64-bit multipliers for the prefix hash (golden ratio; splitmix64).
_HASH_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)
_SENTINEL_MULTIPLIER = np.uint64(0xBF58476D1CE4E5B9)


def _check_settings(
    strategy: str,
    beam_width: int,
    top_paths: int,
    merge_repeated: bool,
    implementation: str,
    where: str,
) -> None:
    if strategy not in STRATEGIES:
        message = (
            f"{where} argument 'strategy' must be one of {STRATEGIES}. Received: "
            f"strategy={strategy!r}. Use 'greedy' (fast, compiled) or "
            "'beam_search' (better labellings, slower)."
        )
        raise ValueError(message)
    if implementation not in IMPLEMENTATIONS:
        message = (
            f"{where} argument 'implementation' must be one of {IMPLEMENTATIONS}. "
            f"Received: implementation={implementation!r}. Leave it at 'auto' "
            "unless you are comparing the decoders."
        )
        raise ValueError(message)
    if isinstance(beam_width, bool) or not isinstance(beam_width, (int, np.integer)):
        message = (
            f"{where} argument 'beam_width' must be an int >= 1. Received: "
            f"beam_width={beam_width!r}. Pass a whole number such as 10."
        )
        raise ValueError(message)
    if beam_width < 1:
        message = (
            f"{where} argument 'beam_width' must be >= 1. Received: "
            f"beam_width={beam_width}. Use 1 for a greedy-like search, more for "
            "a wider one."
        )
        raise ValueError(message)
    if (
        isinstance(top_paths, bool)
        or not isinstance(top_paths, (int, np.integer))
        or not 1 <= top_paths <= beam_width
    ):
        message = (
            f"{where} argument 'top_paths' must be an int with 1 <= top_paths <= "
            f"beam_width ({beam_width}). Received: top_paths={top_paths!r}. Ask "
            "for at most as many paths as the beam keeps, or widen the beam."
        )
        raise ValueError(message)
    if strategy == "greedy" and top_paths != 1:
        message = (
            f"{where}: greedy decoding yields one path, so 'top_paths' must be 1. "
            f"Received: top_paths={top_paths}. Use strategy='beam_search' for "
            "several paths."
        )
        raise ValueError(message)
    if strategy == "beam_search" and not merge_repeated:
        message = (
            f"{where}: beam search always merges repeated labels (it scores CTC "
            "labellings, summing over their alignments), so 'merge_repeated' "
            "must be True with it. Received: merge_repeated=False. Use "
            "strategy='greedy' to keep repeats."
        )
        raise ValueError(message)


def ctc_decode(
    y_pred: Any,
    input_length: Any = None,
    *,
    mask: Any = None,
    strategy: str = "greedy",
    beam_width: int = 10,
    top_paths: int = 1,
    blank_index: int = 0,
    from_logits: bool = True,
    merge_repeated: bool = True,
    implementation: str = "auto",
) -> tuple[Any, Any]:
    """Decode CTC outputs into label sequences, with any blank index.

    Greedy decoding takes the best class of each frame, merges repeats and
    drops blanks; it is backend-neutral `keras.ops` code and runs inside
    `tf.function` / `jax.jit`. Its score is the log-probability of that best
    *alignment*: the sum over valid frames of the log-softmax of the best
    class (Keras's greedy score is instead minus the sum of raw max logits).

    Beam search is a CTC prefix beam search; its score is the log-probability
    of the decoded *labelling* (summed over the alignments the beam kept). On
    the TensorFlow backend it runs TensorFlow's native decoder, also inside
    graphs (`model.predict`, saved models); on other backends it runs a NumPy
    decoder eagerly, so call it outside `jax.jit` (on JAX, compile models that
    use it with `jit_compile=False`). `merge_repeated` applies to greedy only.

    Args:
        y_pred: `(B, T, C)` logits, or probabilities with `from_logits=False`
            (read as `log(p + 1e-7)`, like the CTC loss).
        input_length: `(B,)` or `(B, 1)` valid frames per sample, clipped to
            `[0, T]`. Defaults to the frames a Keras `mask` keeps, else all `T`.
        mask: optional `(B, T)` boolean mask of valid (leading) frames.
        strategy: `"greedy"` or `"beam_search"`.
        beam_width: beams kept per step by beam search (>= 1).
        top_paths: how many labellings to return, `1 <= top_paths <=
            beam_width`; 1 for greedy.
        blank_index: the blank class; negative counts from the end (-1 is
            Keras 2's blank-last convention).
        from_logits: `y_pred` holds logits (True) or softmax outputs (False).
        merge_repeated: greedy only: merge repeated classes before dropping
            blanks (the CTC rule). Must be True for beam search.
        implementation: beam search only: `"auto"` (TensorFlow's native
            decoder on TensorFlow, NumPy elsewhere), `"native"` (TensorFlow
            backend only) or `"numpy"` (eager only).

    Returns:
        `(paths, scores)`: int32 `(top_paths, B, T)` label sequences, left
        aligned and padded with -1, and float32 `(B, top_paths)`
        log-probabilities, best first. A path the input cannot produce (more
        paths asked than distinct labellings exist) is all -1 with score -inf.

    Raises:
        ValueError: For a `y_pred` that is not rank 3, an unknown strategy or
            implementation, `beam_width < 1`, `top_paths` outside
            `[1, beam_width]` (or not 1 for greedy), `merge_repeated=False`
            with beam search, a blank index out of range, or NumPy beam search
            on symbolic (compiled) tensors.

    Example:

    ```python
    import numpy as np
    from serializable.ctc import ctc_decode

    logits = np.random.default_rng(0).normal(size=(2, 10, 5)).astype("float32")
    paths, scores = ctc_decode(logits, [10, 7], blank_index=-1)
    labels = paths[0]  # (2, 10), padded with -1
    paths, scores = ctc_decode(logits, strategy="beam_search", top_paths=3)
    ```
    """
    return _ctc_decode(
        y_pred,
        input_length,
        mask,
        strategy,
        beam_width,
        top_paths,
        blank_index,
        from_logits,
        merge_repeated,
        implementation,
        "ctc_decode",
    )


def _ctc_decode(
    y_pred: Any,
    input_length: Any,
    mask: Any,
    strategy: str,
    beam_width: int,
    top_paths: int,
    blank_index: int,
    from_logits: bool,
    merge_repeated: bool,
    implementation: str,
    where: str,
) -> tuple[Any, Any]:
    _check_settings(
        strategy, beam_width, top_paths, merge_repeated, implementation, where
    )
    y_pred = ops.convert_to_tensor(y_pred)
    check_y_pred_rank(y_pred, where)
    num_classes = y_pred.shape[-1]
    if num_classes is None:
        message = (
            f"{where} argument 'y_pred' must have a known number of classes (last "
            f"axis). Received: y_pred with shape {tuple(y_pred.shape)}. Give the "
            "class axis a static size."
        )
        raise ValueError(message)
    blank = _resolve_blank(blank_index, num_classes, where)
    batch, steps = ops.shape(y_pred)[0], ops.shape(y_pred)[1]
    if input_length is None:
        if mask is not None:
            input_length = ops.sum(ops.cast(mask, "int32"), axis=1)
        else:
            input_length = ops.full((batch,), steps, dtype="int32")
    else:
        input_length = _lengths(input_length, batch, "input_length", where)
    input_length = ops.clip(input_length, 0, steps)
    values = ops.cast(y_pred, "float32")
    if not from_logits:
        values = ops.log(values + EPSILON)
    log_probs = ops.log_softmax(values, axis=-1)
    if strategy == "greedy":
        return _greedy(log_probs, input_length, blank, merge_repeated)
    if num_classes == 1:  # only the blank: the empty labelling, probability 1
        paths = ops.full((top_paths, batch, steps), -1, dtype="int32")
        first = ops.zeros((batch, 1), dtype="float32")
        rest = ops.full((batch, top_paths - 1), float("-inf"), dtype="float32")
        return paths, ops.concatenate([first, rest], axis=1)
    if implementation == "auto":
        implementation = "native" if tensorflow_ops.available() else "numpy"
    if implementation == "native":
        if not tensorflow_ops.available():
            message = (
                f"{where}: implementation='native' is TensorFlow's beam decoder, "
                "so it needs the TensorFlow backend. Received: "
                f"implementation='native' on the {_backends.name()!r} "
                "backend. Use implementation='auto'."
            )
            raise ValueError(message)
        paths, scores = tensorflow_ops.ctc_beam_search_native(
            log_probs, input_length, beam_width, top_paths, blank
        )
        return ops.cast(paths, "int32"), ops.cast(scores, "float32")
    try:
        log_probs_np = ops.convert_to_numpy(log_probs)
        lengths_np = ops.convert_to_numpy(input_length)
    except Exception as err:
        message = (
            f"{where}: NumPy beam search runs eagerly and needs concrete values. "
            f"Received: symbolic y_pred inside a compiled function on the "
            f"{_backends.name()!r} backend. Call it eagerly (compile the "
            "model with jit_compile=False), or use strategy='greedy'."
        )
        raise ValueError(message) from err
    paths_np, scores_np = ctc_beam_search_numpy(
        log_probs_np, lengths_np, beam_width, top_paths, blank
    )
    return ops.convert_to_tensor(paths_np), ops.convert_to_tensor(scores_np)


def _greedy(
    log_probs: Any, input_length: Any, blank: int, merge_repeated: bool
) -> tuple[Any, Any]:
    """Best class per frame, repeats merged, blanks dropped, left-aligned."""
    steps = ops.shape(log_probs)[1]
    best = ops.cast(ops.argmax(log_probs, axis=-1), "int32")
    time = ops.arange(steps, dtype="int32")[None, :]
    frames = time < input_length[:, None]
    keep = ops.logical_and(ops.not_equal(best, blank), frames)
    if merge_repeated:
        previous = ops.concatenate(
            [ops.full_like(best[:, :1], -1), best[:, :-1]], axis=1
        )
        keep = ops.logical_and(keep, ops.not_equal(best, previous))
    # Sorting on "kept frames first, in time order" left-compacts the labels
    # without data-dependent shapes, so it compiles on every backend.
    key = ops.where(keep, time, time + steps)
    order = ops.argsort(key, axis=1)
    paths = ops.take_along_axis(best, order, axis=1)
    count = ops.sum(ops.cast(keep, "int32"), axis=1)
    paths = ops.where(time < count[:, None], paths, -1)
    best_log_prob = ops.max(log_probs, axis=-1)
    scores = ops.sum(ops.where(frames, best_log_prob, 0.0), axis=1)
    return paths[None], scores[:, None]


def ctc_beam_search_numpy(
    log_probs: np.ndarray,
    input_length: np.ndarray,
    beam_width: int,
    top_paths: int,
    blank_index: int,
) -> tuple[np.ndarray, np.ndarray]:
    """CTC prefix beam search in NumPy, vectorized over batch and beams.

    Each step scores, for every beam, "stay" (a blank, or a repeat of its last
    label) and "extend by class c" for every non-blank c; candidates that are
    the same prefix are merged by sorting their 64-bit prefix hashes and
    summing probabilities per (sample, hash) group; the best `beam_width`
    groups survive. Parent pointers and appended labels are kept per step and
    followed back at the end, so no prefix is ever stored as a sequence.

    Args:
        log_probs: float `(B, T, C)` logits or log-probabilities (each frame is
            log-softmax normalized here).
        input_length: int `(B,)` or `(B, 1)` valid frames, clipped to `[0, T]`.
        beam_width: beams kept per step, >= 1.
        top_paths: labellings returned per sample, `1 <= top_paths <=
            beam_width`.
        blank_index: the blank class; negative counts from the end.

    Returns:
        int32 paths `(top_paths, B, T)` padded with -1 and float32
        log-probability scores `(B, top_paths)`, best first; paths that do not
        exist are all -1 with score -inf.
    """
    x = np.asarray(log_probs, dtype=np.float64)
    batch, steps, num_classes = x.shape
    blank = blank_index % num_classes
    lengths = np.clip(np.asarray(input_length).reshape(-1), 0, steps).astype(np.int64)
    beams = int(beam_width)
    width = num_classes - 1  # non-blank classes, indexed 0..width-1 below
    classes = np.delete(np.arange(num_classes), blank)
    if width == 0:  # only the blank: the empty labelling, with probability 1
        scores = np.full((batch, top_paths), -np.inf, dtype=np.float32)
        scores[:, 0] = 0.0
        return np.full((top_paths, batch, steps), -1, dtype=np.int32), scores

    top = x.max(axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    x = x - top
    x = x - np.log(np.exp(x).sum(axis=-1, keepdims=True))
    blank_lp = np.ascontiguousarray(x[:, :, blank].T)  # (T, B)
    label_lp = np.ascontiguousarray(x[:, :, classes].transpose(1, 0, 2))  # (T,B,W)

    candidates = beams * num_classes  # K stays, then K * W extensions
    rows = np.arange(batch)[:, None]
    row_offset = rows * candidates
    beam_ids = np.broadcast_to(np.arange(beams), (batch, beams))
    label_ids = np.arange(width, dtype=np.uint64) + np.uint64(1)
    # Dead candidates (probability 0) get unique hashes so they never merge
    # with a live prefix and lend it their (meaningless) history.
    sentinel = (
        np.arange(candidates, dtype=np.uint64) + np.uint64(1)
    ) * _SENTINEL_MULTIPLIER
    row_start = np.zeros(batch * candidates, dtype=bool)
    row_start[::candidates] = True

    p_blank = np.full((batch, beams), -np.inf)
    p_blank[:, 0] = 0.0  # the empty prefix
    p_label = np.full((batch, beams), -np.inf)
    prefix_hash = np.zeros((batch, beams), dtype=np.uint64)
    last = np.full((batch, beams), -1, dtype=np.int64)
    parents = np.empty((steps, batch, beams), dtype=np.int64)
    appended = np.empty((steps, batch, beams), dtype=np.int64)
    no_label = np.full((batch, beams), -1, dtype=np.int64)
    ext_blank = np.full((batch, beams * width), -np.inf)

    for t in range(steps):
        active = (t < lengths)[:, None]
        frame = label_lp[t]
        total = np.logaddexp(p_blank, p_label)
        stay_blank = total + blank_lp[t][:, None]
        repeat = np.take_along_axis(frame, np.maximum(last, 0), axis=1)
        stay_label = np.where(last >= 0, p_label + repeat, -np.inf)
        # Extending by the last label needs a blank in between.
        same = last[:, :, None] == np.arange(width)
        previous = np.where(same, p_blank[:, :, None], total[:, :, None])
        ext_label = previous + frame[:, None, :]
        mixed = prefix_hash[:, :, None] * _HASH_MULTIPLIER + label_ids
        ext_hash = mixed ^ (mixed >> np.uint64(29))

        cand_blank = np.concatenate([stay_blank, ext_blank], axis=1)
        cand_label = np.concatenate([stay_label, ext_label.reshape(batch, -1)], 1)
        cand_hash = np.concatenate([prefix_hash, ext_hash.reshape(batch, -1)], 1)
        dead = np.logaddexp(cand_blank, cand_label) == -np.inf
        cand_hash = np.where(dead, sentinel, cand_hash)

        order = (np.argsort(cand_hash, axis=1) + row_offset).ravel()
        hashes = cand_hash.ravel()[order]
        starts_mask = row_start.copy()
        starts_mask[1:] |= hashes[1:] != hashes[:-1]
        starts = np.flatnonzero(starts_mask)
        group_blank = np.logaddexp.reduceat(cand_blank.ravel()[order], starts)
        group_label = np.logaddexp.reduceat(cand_label.ravel()[order], starts)
        score = np.full(batch * candidates, -np.inf)
        score[starts] = np.logaddexp(group_blank, group_label)
        score = score.reshape(batch, candidates)

        best = np.argpartition(score, candidates - beams, axis=1)[:, -beams:]
        best_score = np.take_along_axis(score, best, axis=1)
        best = np.take_along_axis(best, np.argsort(-best_score, axis=1), axis=1)
        chosen = (best + row_offset).ravel()
        group = np.cumsum(starts_mask)[chosen] - 1
        live = starts_mask[chosen].reshape(batch, beams)
        source = order[chosen].reshape(batch, beams) - row_offset
        is_stay = source < beams
        parent = np.where(is_stay, source, (source - beams) // width)
        label = np.where(is_stay, -1, (source - beams) % width)

        new_last = np.where(is_stay, np.take_along_axis(last, parent, axis=1), label)
        new_blank = np.where(live, group_blank[group].reshape(batch, beams), -np.inf)
        new_label = np.where(live, group_label[group].reshape(batch, beams), -np.inf)
        p_blank = np.where(active, new_blank, p_blank)
        p_label = np.where(active, new_label, p_label)
        prefix_hash = np.where(
            active, hashes[chosen].reshape(batch, beams), prefix_hash
        )
        last = np.where(active, new_last, last)
        parents[t] = np.where(active, parent, beam_ids)
        appended[t] = np.where(active, label, no_label)

    scores = np.logaddexp(p_blank, p_label)[:, :top_paths]
    beam = np.broadcast_to(np.arange(top_paths), (batch, top_paths)).copy()
    labels = np.empty((steps, batch, top_paths), dtype=np.int64)
    for t in range(steps - 1, -1, -1):
        labels[t] = np.take_along_axis(appended[t], beam, axis=1)
        beam = np.take_along_axis(parents[t], beam, axis=1)
    labels = labels.transpose(2, 1, 0)  # (P, B, T)
    labels = np.where(np.isneginf(scores).T[:, :, None], -1, labels)
    kept = labels >= 0
    position = np.cumsum(kept, axis=-1) - 1
    paths = np.full(labels.shape, -1, dtype=np.int32)
    where_p, where_b, where_t = np.nonzero(kept)
    paths[where_p, where_b, position[kept]] = classes[labels[where_p, where_b, where_t]]
    return paths, scores.astype(np.float32)


class CTCDecoder(SerializableLayer, package="serializable"):
    """Decode CTC outputs inside a model: `(B, T, C)` scores in, labels out.

    Call it as `CTCDecoder(...)(y_pred[, input_length])`. It returns the best
    labelling per sample as int32 `(B, T)`, left-aligned and padded with -1;
    with `top_paths > 1`, `(B, top_paths, T)` (batch first, so
    `model.predict` can batch it), best first. Without `input_length`, a
    Keras mask on `y_pred` (or else the full time axis) gives the lengths.
    Saves and reloads with all its settings in `.keras` and `.h5`.

    Greedy decoding compiles on every backend. Beam search runs TensorFlow's
    native decoder on TensorFlow (inside `predict` and saved models too); on
    JAX and torch it runs eagerly in NumPy. The layer tells Keras it cannot be
    XLA-compiled, so `jit_compile="auto"` (the default) picks a plain graph on
    TensorFlow and eager execution on JAX; do not force `jit_compile=True` on
    a model with a beam-search decoder. See `ctc_decode` for the details.

    Args:
        strategy: `"greedy"` or `"beam_search"`.
        beam_width: beams kept per step by beam search (>= 1).
        top_paths: labellings returned, `1 <= top_paths <= beam_width`.
        blank_index: the blank class; negative counts from the end (-1 is
            Keras 2's convention).
        from_logits: inputs are logits (True) or softmax outputs (False).
        merge_repeated: greedy only: merge repeated classes (the CTC rule).
        **kwargs: `name`, `dtype`, `trainable` as for any layer.

    Example:

    ```python
    import keras
    from serializable.ctc import CTCDecoder

    frames = keras.Input((50, 16))
    logits = keras.layers.Dense(28)(frames)
    labels = CTCDecoder(strategy="beam_search", blank_index=-1)(logits)
    inference = keras.Model(frames, labels)  # (batch, 50) ints, -1 padded
    ```
    """

    def __init__(
        self,
        strategy: str = "greedy",
        beam_width: int = 10,
        top_paths: int = 1,
        blank_index: int = 0,
        from_logits: bool = True,
        merge_repeated: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _check_settings(
            strategy, beam_width, top_paths, merge_repeated, "auto", "CTCDecoder"
        )
        self.strategy = strategy
        self.beam_width = beam_width
        self.top_paths = top_paths
        self.blank_index = blank_index
        self.from_logits = from_logits
        self.merge_repeated = merge_repeated
        self.supports_masking = True
        # Neither decoder compiles with XLA (TensorFlow's is a CPU kernel, the
        # other NumPy): saying so makes Keras's jit_compile="auto" choose a
        # plain tf.function on TensorFlow and eager execution on JAX.
        self.supports_jit = strategy == "greedy"

    def call(self, y_pred: Any, input_length: Any = None, mask: Any = None) -> Any:
        frame_mask = mask[0] if isinstance(mask, (list, tuple)) else mask
        paths, _ = _ctc_decode(
            y_pred,
            input_length,
            frame_mask,
            self.strategy,
            self.beam_width,
            self.top_paths,
            self.blank_index,
            self.from_logits,
            self.merge_repeated,
            "auto",
            f"CTCDecoder '{self.name}'",
        )
        if self.top_paths == 1:
            return paths[0]
        return ops.transpose(paths, (1, 0, 2))

    def compute_output_spec(self, y_pred: Any, *args: Any, **kwargs: Any) -> Any:
        batch, steps = y_pred.shape[0], y_pred.shape[1]
        shape = (
            (batch, steps) if self.top_paths == 1 else (batch, self.top_paths, steps)
        )
        return keras.KerasTensor(shape, dtype="int32")

    def compute_mask(
        self, y_pred: Any, *args: Any, mask: Any = None, **kwargs: Any
    ) -> Any:
        # The frame mask does not describe the label positions: consume it.
        return None
