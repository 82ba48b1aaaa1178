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
  B=32, T=200, C=30, width 10; this one a fraction of a second). The NumPy
  decoder can prune per frame (`token_top_k`, `token_min_log_prob`) and per
  beam score (`beam_threshold`), keeps the greedy labelling as a candidate,
  and can report exact labelling log-probabilities (`exact_scores`).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from . import _backends
from ._backends import tensorflow_ops
from ._bases import SerializableLayer
from ._ctc import EPSILON, _resolve_blank, check_y_pred_rank, input_lengths

STRATEGIES = ("greedy", "beam_search")
IMPLEMENTATIONS = ("auto", "native", "numpy")

# Odd 64-bit multiplier for the prefix hash (the golden ratio's).
_HASH_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)


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
    token_top_k: int | None = None,
    token_min_log_prob: float | None = None,
    beam_threshold: float | None = None,
    keep_greedy: bool | None = None,
    exact_scores: bool = False,
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
            decoder on TensorFlow, NumPy elsewhere or when a NumPy-only
            setting below is given), `"native"` (TensorFlow backend only) or
            `"numpy"` (eager only).
        token_top_k: NumPy beam search: try at most this many classes per
            frame, the most likely first (flashlight's `beam_size_token`).
            None: all.
        token_min_log_prob: NumPy beam search: do not try classes whose
            log-probability in the frame is below this (the frame's best is
            always tried; pyctcdecode's `token_min_logp`). None: all.
        beam_threshold: NumPy beam search: drop prefixes more than this many
            nats below the best one (flashlight's `beam_threshold`). None:
            keep `beam_width`.
        keep_greedy: NumPy beam search: also score the greedy labelling and
            return it first where it is more probable than the best beam's
            (a prefix beam search alone can miss it on peaked outputs).
            None (default): the decoder's own behaviour, which is True for
            the NumPy decoder; TensorFlow's native decoder never does this,
            so True selects the NumPy decoder under `"auto"`.
        exact_scores: NumPy beam search: score each returned labelling by its
            exact log-probability (forward algorithm) instead of the beam's
            lower bound.

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
        pruning=(token_top_k, token_min_log_prob, beam_threshold),
        exact_scores=exact_scores,
        keep_greedy=keep_greedy,
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
    pruning: tuple[Any, Any, Any] = (None, None, None),
    exact_scores: bool = False,
    keep_greedy: bool | None = None,
    numpy_in_graph: bool = False,
) -> tuple[Any, Any]:
    _check_settings(
        strategy, beam_width, top_paths, merge_repeated, implementation, where
    )
    _check_pruning(*pruning, where)
    _check_keep_greedy(keep_greedy, where)
    numpy_only = (
        exact_scores
        or keep_greedy is True
        or any(value is not None for value in pruning)
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
    input_length = input_lengths(input_length, mask, batch, steps, where)
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
        native = tensorflow_ops.available() and not numpy_only
        implementation = "native" if native else "numpy"
    if implementation == "native" and numpy_only:
        message = (
            f"{where}: token_top_k, token_min_log_prob, beam_threshold, "
            "keep_greedy=True and exact_scores are settings of the NumPy beam "
            "search, which TensorFlow's native decoder does not have. Received: "
            "implementation='native' with one of them set. Use "
            "implementation='auto' or 'numpy', or leave them at their defaults."
        )
        raise ValueError(message)
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
    token_top_k, token_min_log_prob, beam_threshold = pruning

    def run(log_probs_np: np.ndarray, lengths_np: np.ndarray) -> tuple:
        paths_np, scores_np = ctc_beam_search_numpy(
            log_probs_np,
            lengths_np,
            beam_width,
            top_paths,
            blank,
            token_top_k=token_top_k,
            token_min_log_prob=token_min_log_prob,
            beam_threshold=beam_threshold,
            keep_greedy=True if keep_greedy is None else keep_greedy,
            exact_scores=exact_scores,
        )
        return paths_np, scores_np

    if (
        numpy_in_graph
        and tensorflow_ops.available()
        and tensorflow_ops.is_symbolic(log_probs)
    ):
        # CTCDecoder in model.predict on TensorFlow: a plain graph (the layer
        # opts out of XLA), so the NumPy decoder runs as a graph op.
        paths, scores = tensorflow_ops.numpy_function(
            run,
            [log_probs, input_length],
            ["int32", "float32"],
            [(top_paths, None, log_probs.shape[1]), (None, top_paths)],
        )
        return paths, scores
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
    paths_np, scores_np = run(log_probs_np, lengths_np)
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


def _check_pruning(
    token_top_k: int | None,
    token_min_log_prob: float | None,
    beam_threshold: float | None,
    where: str,
) -> None:
    if token_top_k is not None and (
        isinstance(token_top_k, bool)
        or not isinstance(token_top_k, (int, np.integer))
        or token_top_k < 1
    ):
        message = (
            f"{where} argument 'token_top_k' must be None (no limit) or an int "
            f">= 1. Received: token_top_k={token_top_k!r}. Pass e.g. 40 to try "
            "only each frame's 40 most likely classes."
        )
        raise ValueError(message)
    for name, value in (
        ("token_min_log_prob", token_min_log_prob),
        ("beam_threshold", beam_threshold),
    ):
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, (int, float, np.floating, np.integer))
            or np.isnan(value)
            or (name == "beam_threshold" and value < 0)
        ):
            message = (
                f"{where} argument '{name}' must be None (no pruning) or a "
                f"{'non-negative ' if name == 'beam_threshold' else ''}number of "
                f"nats. Received: {name}={value!r}. Pass e.g. "
                f"{'-10.0' if name == 'token_min_log_prob' else '25.0'}, or None."
            )
            raise ValueError(message)


def _check_keep_greedy(keep_greedy: Any, where: str) -> None:
    if keep_greedy is not None and not isinstance(keep_greedy, (bool, np.bool_)):
        message = (
            f"{where} argument 'keep_greedy' must be None (the decoder's "
            f"default), True or False. Received: keep_greedy={keep_greedy!r}. "
            "Pass a bool, or leave it out."
        )
        raise ValueError(message)


def ctc_beam_search_numpy(
    log_probs: np.ndarray,
    input_length: np.ndarray,
    beam_width: int,
    top_paths: int,
    blank_index: int,
    *,
    token_top_k: int | None = None,
    token_min_log_prob: float | None = None,
    beam_threshold: float | None = None,
    keep_greedy: bool = True,
    exact_scores: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """CTC prefix beam search in NumPy, vectorized over batch and beams.

    Each step scores, for every beam, "stay" (a blank, or a repeat of its last
    label) and "extend by class c" for every non-blank c it tries. The only
    candidates that can be the same prefix are "beam i extended by c" and the
    stay of the beam j whose prefix is i's plus c; they are found by comparing
    64-bit hashes (of each prefix, and of each prefix without its last label)
    and merged into j's stay. The best `beam_width` candidates survive; only
    those get new hashes. Parent pointers and appended labels are kept per
    step and followed back at the end, so no prefix is stored as a sequence.

    Pruning (all off by default, which is the exact prefix beam search):

    * token pruning: at each frame, extend only by the classes with
      log-probability >= `token_min_log_prob` (the frame's best class is
      always tried; pyctcdecode's `token_min_logp`), at most `token_top_k` of
      them, the most likely first (flashlight's `beam_size_token`);
    * beam pruning: drop prefixes more than `beam_threshold` nats below the
      sample's best at that frame (flashlight's `beam_threshold`).

    With `keep_greedy` (the default), the greedy (best path) labelling is a
    candidate too: when its exact log-probability (forward algorithm) beats
    the best beam's labelling's, it is returned first (and the beams after
    it), so the result is never less probable than greedy's. A prefix beam
    search alone can miss it on peaked outputs. `keep_greedy=False` with no
    pruning is the textbook prefix beam search, exactly.

    Args:
        log_probs: float `(B, T, C)` logits or log-probabilities (each frame is
            log-softmax normalized here).
        input_length: int `(B,)` or `(B, 1)` valid frames, clipped to `[0, T]`.
        beam_width: beams kept per step, >= 1.
        top_paths: labellings returned per sample, `1 <= top_paths <=
            beam_width`.
        blank_index: the blank class; negative counts from the end.
        token_top_k: at most this many non-blank classes tried per frame.
        token_min_log_prob: classes below this log-probability are not tried.
        beam_threshold: prefixes this many nats below the best are dropped.
        keep_greedy: return the greedy labelling first where it is more
            probable than the best beam's.
        exact_scores: return each labelling's exact log-probability (summed
            over all its alignments) instead of the beam's estimate (summed
            over the alignments the beam kept, a lower bound).

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
    tried = _tried_per_frame(label_lp, lengths, token_top_k, token_min_log_prob)

    rows = np.arange(batch)[:, None]
    beam_ids = np.broadcast_to(np.arange(beams), (batch, beams))
    label_ids = np.arange(width, dtype=np.uint64) + np.uint64(1)
    all_classes = np.broadcast_to(np.arange(width), (batch, width))
    beam_offset = rows * beams
    class_offset = rows * width
    shortest = int(lengths.min(initial=steps))
    neg_inf = np.full((batch, beams), -np.inf)
    no_label = np.full((batch, beams), -1, dtype=np.int64)

    p_blank = neg_inf.copy()
    p_blank[:, 0] = 0.0  # the empty prefix
    p_label = neg_inf.copy()
    prefix_hash = np.zeros((batch, beams), dtype=np.uint64)
    # The hash of each prefix without its last label (unused for the empty one).
    parent_hash = np.zeros((batch, beams), dtype=np.uint64)
    last = no_label.copy()
    parents = np.empty((steps, batch, beams), dtype=np.int64)
    appended = np.empty((steps, batch, beams), dtype=np.int64)

    for t in range(steps):
        active = (t < lengths)[:, None]
        frame = label_lp[t]
        k = width if tried is None else int(tried[t])
        if k >= width:
            k, chosen_classes, chosen_lp = width, all_classes, frame
        else:
            chosen_classes = np.argpartition(-frame, k - 1, axis=1)[:, :k]
            chosen_lp = frame.ravel()[chosen_classes + class_offset]
            if token_min_log_prob is not None:
                best_lp = frame.max(axis=1, keepdims=True)
                keep = (chosen_lp >= token_min_log_prob) | (chosen_lp == best_lp)
                chosen_lp = np.where(keep, chosen_lp, -np.inf)
        total = np.logaddexp(p_blank, p_label)
        live = total > -np.inf
        stay_blank = total + blank_lp[t][:, None]
        has_last = last >= 0
        repeat = frame.ravel()[np.maximum(last, 0) + class_offset]
        stay_label = np.where(has_last, p_label + repeat, -np.inf)
        # Extending by the last label needs a blank in between.
        same = last[:, :, None] == chosen_classes[:, None, :]  # (B, K, k)
        ext = np.where(same, p_blank[:, :, None], total[:, :, None])
        ext += chosen_lp[:, None, :]
        # The only candidates that are the same prefix: beam i extended by c
        # and the beam j whose prefix is i's plus c. Merge those into j's stay.
        match = parent_hash[:, :, None] == prefix_hash[:, None, :]  # (B, j, i)
        match &= live[:, None, :]
        match &= (live & has_last)[:, :, None]
        merges = np.flatnonzero(match.any(axis=2) & same.any(axis=2))
        if merges.size:
            b_idx = merges // beams
            i_idx = match.reshape(batch * beams, beams)[merges].argmax(axis=1)
            c_idx = same.reshape(batch * beams, k)[merges].argmax(axis=1)
            moved = ext[b_idx, i_idx, c_idx]
            ext[b_idx, i_idx, c_idx] = -np.inf
            flat_stay = stay_label.reshape(-1)
            flat_stay[merges] = np.logaddexp(flat_stay[merges], moved)
        candidates = beams * (1 + k)  # K stays, then K * k extensions
        score = np.empty((batch, candidates))
        np.logaddexp(stay_blank, stay_label, out=score[:, :beams])
        score[:, beams:] = ext.reshape(batch, beams * k)
        if beam_threshold is not None:
            floor = score.max(axis=1, keepdims=True) - beam_threshold
            score[score < floor] = -np.inf

        best = np.argpartition(score, candidates - beams, axis=1)[:, -beams:]
        best += rows * candidates
        best_score = score.ravel()[best]
        order = np.argsort(-best_score, axis=1) + beam_offset
        best_score = best_score.ravel()[order]
        source = best.ravel()[order] - rows * candidates
        alive = best_score > -np.inf
        is_stay = source < beams
        parent = np.where(is_stay, source, (source - beams) // k)
        flat_parent = (parent + beam_offset).ravel()
        column = (source - beams) % k + rows * k
        label = np.where(is_stay, -1, chosen_classes.ravel()[column])
        from_hash = prefix_hash.ravel()[flat_parent].reshape(batch, beams)
        mixed = from_hash * _HASH_MULTIPLIER + label_ids[np.maximum(label, 0)]
        new_hash = np.where(is_stay, from_hash, mixed ^ (mixed >> np.uint64(29)))
        stays = [
            a.ravel()[flat_parent].reshape(batch, beams)
            for a in (parent_hash, last, stay_blank, stay_label)
        ]
        new_parent_hash = np.where(is_stay, stays[0], from_hash)
        new_last = np.where(is_stay, stays[1], label)
        new_blank = np.where(is_stay & alive, stays[2], -np.inf)
        new_label = np.where(alive, np.where(is_stay, stays[3], best_score), -np.inf)
        if t < shortest:  # every sample is still in its frames
            p_blank, p_label, last = new_blank, new_label, new_last
            prefix_hash, parent_hash = new_hash, new_parent_hash
            parents[t], appended[t] = parent, label
            continue
        p_blank = np.where(active, new_blank, p_blank)
        p_label = np.where(active, new_label, p_label)
        prefix_hash = np.where(active, new_hash, prefix_hash)
        parent_hash = np.where(active, new_parent_hash, parent_hash)
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
    if keep_greedy or exact_scores:
        paths, scores = _keep_greedy(
            x, lengths, blank, paths, scores, keep_greedy, exact_scores
        )
    return paths, scores.astype(np.float32)


def _tried_per_frame(
    label_lp: np.ndarray,
    lengths: np.ndarray,
    token_top_k: int | None,
    token_min_log_prob: float | None,
) -> np.ndarray | None:
    """How many classes each frame tries: the most any sample needs, >= 1."""
    if token_top_k is None and token_min_log_prob is None:
        return None
    steps, _, width = label_lp.shape
    if token_min_log_prob is None:
        needed = np.full(steps, width)
    else:
        above = (label_lp >= token_min_log_prob).sum(axis=2)  # (T, B)
        valid = np.arange(steps)[:, None] < lengths[None, :]
        needed = np.where(valid, np.maximum(above, 1), 1).max(axis=1, initial=1)
    if token_top_k is not None:
        needed = np.minimum(needed, token_top_k)
    return needed


def _labelling_log_prob(
    x: np.ndarray, lengths: np.ndarray, labels: np.ndarray, blank: int
) -> np.ndarray:
    """Exact log P(labelling | x) by the CTC forward algorithm, per row.

    Args:
        x: `(N, T, C)` log-softmax frames.
        lengths: int `(N,)` valid frames.
        labels: int `(N, U)` class indices padded with -1.
        blank: the blank class.
    """
    rows, steps, _ = x.shape
    label_count = (labels >= 0).sum(axis=1)
    width = max(int(label_count.max(initial=0)), 1)
    ext = np.full((rows, 2 * width + 1), blank, dtype=np.int64)
    ext[:, 1::2] = np.where(labels[:, :width] >= 0, labels[:, :width], blank)
    states = ext.shape[1]
    # A skip from s - 2 to s is allowed onto a label that differs from s - 2.
    skip_cost = np.full((rows, states), -np.inf)
    skip_cost[:, 2:] = np.where(
        (ext[:, 2:] == blank) | (ext[:, 2:] == ext[:, :-2]), -np.inf, 0.0
    )
    flat_x = np.ascontiguousarray(x).reshape(-1)
    emit_index = ext + (np.arange(rows) * (steps * x.shape[2]))[:, None]
    # alpha lives in columns 2.. of a buffer whose first two columns stay
    # -inf, so "one state back" and "two back" are views, not copies.
    buffer = np.full((rows, states + 2), -np.inf)
    alpha = buffer[:, 2:]
    alpha[:, :2] = 0.0  # frame 0 starts in the first blank or the first label
    # Only states in a band matter at frame t: those reachable by then (at
    # most 2t + 1) and those that can still reach a final state of a row
    # that is still running (at least 2U - 1 - 2 (L - 1 - t)); the band's low
    # edge rises by 2 a frame, so every state it reads was updated.
    need = 2 * label_count - 1 - 2 * (lengths - 1)
    shortest = int(lengths.min(initial=steps))
    for t in range(min(steps, int(lengths.max(initial=0)))):
        running = t < lengths
        low = max(int(need[running].min()) + 2 * t, 0)
        high = min(states, 2 * t + 2)
        if t == 0:
            moved = alpha[:, low:high].copy()
        else:
            moved = np.logaddexp(
                buffer[:, low + 2 : high + 2], buffer[:, low + 1 : high + 1]
            )
            np.logaddexp(moved, buffer[:, low:high] + skip_cost[:, low:high], out=moved)
        moved += flat_x[emit_index[:, low:high] + t * x.shape[2]]
        if t < shortest:
            alpha[:, low:high] = moved
        else:
            alpha[:, low:high] = np.where(running[:, None], moved, alpha[:, low:high])
    end = 2 * label_count
    last_blank = np.take_along_axis(alpha, end[:, None], axis=1)[:, 0]
    last_label = np.take_along_axis(alpha, np.maximum(end - 1, 0)[:, None], axis=1)
    last_label = np.where(label_count > 0, last_label[:, 0], -np.inf)
    result = np.logaddexp(last_blank, last_label)
    # No frames: only the empty labelling is possible, with probability 1.
    empty_input = lengths == 0
    return np.where(empty_input, np.where(label_count == 0, 0.0, -np.inf), result)


def _keep_greedy(
    x: np.ndarray,
    lengths: np.ndarray,
    blank: int,
    paths: np.ndarray,
    scores: np.ndarray,
    keep_greedy: bool,
    exact_scores: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Put the greedy labelling first where it is more probable than the best beam."""
    top_paths, batch, steps = paths.shape
    best = x.argmax(axis=-1)
    frames = np.arange(steps)[None, :] < lengths[:, None]
    previous = np.concatenate([np.full((batch, 1), -1), best[:, :-1]], axis=1)
    keep = frames & (best != blank) & (best != previous)
    greedy = np.full((batch, steps), -1, dtype=np.int32)
    b_idx, t_idx = np.nonzero(keep)
    greedy[b_idx, (np.cumsum(keep, axis=1) - 1)[keep]] = best[keep]
    differs = ~np.all(greedy == paths[0], axis=1) & keep_greedy  # (B,)
    rescored = np.arange(batch) if exact_scores else np.flatnonzero(differs)
    if rescored.size == 0:
        return paths, scores
    sub = x[rescored]
    sub_lengths = lengths[rescored]
    # One forward pass over the greedy labellings and the beams' (all of
    # them for exact_scores, else the best), stacked as rows.
    beam_rows = top_paths if exact_scores else 1
    stacked = np.concatenate(
        [greedy[rescored][None], paths[:beam_rows, rescored]], axis=0
    ).reshape((beam_rows + 1) * rescored.size, steps)
    exact = _labelling_log_prob(
        np.broadcast_to(sub, (beam_rows + 1, *sub.shape)).reshape(-1, *sub.shape[1:]),
        np.tile(sub_lengths, beam_rows + 1),
        stacked,
        blank,
    ).reshape(beam_rows + 1, rescored.size)
    greedy_score = exact[0]
    if exact_scores:
        beam_scores = np.where(np.isneginf(scores[rescored]), -np.inf, exact[1:].T)
        beam_best = beam_scores[:, 0]
    else:
        beam_best = exact[1]
        beam_scores = scores[rescored]
    paths = paths.copy()
    scores = scores.astype(np.float64, copy=True)
    scores[rescored] = beam_scores
    wins = differs[rescored] & (greedy_score > beam_best)
    for row, greedy_best in zip(rescored[wins], greedy_score[wins], strict=True):
        # Greedy first, then the beams that differ from it, best first.
        others = [
            p for p in range(top_paths) if not np.all(paths[p, row] == greedy[row])
        ][: top_paths - 1]
        paths[1:, row] = paths[others, row]
        scores[row, 1:] = scores[row, others]
        paths[0, row] = greedy[row]
        scores[row, 0] = greedy_best
    return paths, scores


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
        token_top_k: beam search: try at most this many classes per frame.
        token_min_log_prob: beam search: do not try classes below this
            log-probability in their frame (the frame's best always is).
        beam_threshold: beam search: drop prefixes this many nats below the
            best.
        keep_greedy: beam search: return the greedy labelling first where it
            is more probable than the best beam's (None: the decoder's
            default).
        **kwargs: `name`, `dtype`, `trainable` as for any layer.

    The four beam-search settings are those of `ctc_decode` (None: off);
    setting any of them (or `keep_greedy=True`) runs the NumPy decoder, also
    on TensorFlow (inside `predict` as a `tf.numpy_function`: such a model
    cannot be exported as a TensorFlow SavedModel).

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
        token_top_k: int | None = None,
        token_min_log_prob: float | None = None,
        beam_threshold: float | None = None,
        keep_greedy: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _check_settings(
            strategy, beam_width, top_paths, merge_repeated, "auto", "CTCDecoder"
        )
        _check_pruning(token_top_k, token_min_log_prob, beam_threshold, "CTCDecoder")
        _check_keep_greedy(keep_greedy, "CTCDecoder")
        self.token_top_k = token_top_k
        self.token_min_log_prob = token_min_log_prob
        self.beam_threshold = beam_threshold
        self.keep_greedy = keep_greedy
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
            pruning=(self.token_top_k, self.token_min_log_prob, self.beam_threshold),
            keep_greedy=self.keep_greedy,
            numpy_in_graph=True,
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
