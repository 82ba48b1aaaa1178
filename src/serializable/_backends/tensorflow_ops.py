"""TensorFlow-only fast paths, used only when Keras runs on the TensorFlow backend.

The one place in the library that imports TensorFlow. Everything here has a
backend-neutral fallback in the module that calls it; this module only makes
the TensorFlow backend use TensorFlow's native kernels where Keras does not:

* CTC loss: `keras.ops.ctc_loss` passes *dense* labels to `tf.nn.ctc_loss`,
  which then runs a pure-TensorFlow forward-backward (~190 ms per loss and
  gradient at B=32, T=200, C=30); with *sparse* labels TensorFlow uses its
  native C++ kernel (~20 ms).
* CTC beam search: `tf.nn.ctc_beam_search_decoder`, TensorFlow's native decoder.
"""

from __future__ import annotations

from typing import Any

# Log-probability of a label in the padding frames `ctc_beam_search_native`
# adds: finite (TF keeps such prefixes, unlike -inf ones) yet far below any
# real score, so prefixes that use one are recognisable.
_FAKE_LOG_PROB = -1e30


def available() -> bool:
    """True when Keras runs on TensorFlow (so TensorFlow is importable)."""
    import keras

    return keras.backend.backend() == "tensorflow"


def ctc_loss_native(
    labels: Any,
    log_probs: Any,
    label_length: Any,
    input_length: Any,
    blank_index: int,
) -> Any:
    """Per-sample CTC loss with TensorFlow's native kernel (sparse labels).

    The kernel refuses empty labels. An empty label's only alignment is all
    blanks, so those rows get `-sum log softmax(blank)` over their frames,
    and the kernel gets a one-label stand-in for them. That term is computed
    only when the batch has an empty label (a `tf.cond`), and then only on
    those rows, so batches without one cost just the kernel.

    Args:
        labels: int `(B, L)`, padded anywhere past `label_length`.
        log_probs: float32 `(B, T, C)`, batch-major logits or log-probabilities.
        label_length: int `(B,)`.
        input_length: int `(B,)`.
        blank_index: the blank class, in `[0, C)`.
    """
    import tensorflow as tf

    labels = tf.cast(labels, tf.int32)
    label_length = tf.cast(label_length, tf.int32)
    input_length = tf.cast(input_length, tf.int32)
    empty = tf.equal(label_length, 0)
    # The stand-in for an empty label: one non-blank class, at least one frame.
    filler = 1 if blank_index == 0 else 0
    first = tf.where(empty, filler, labels[:, 0])
    labels = tf.concat([first[:, None], labels[:, 1:]], axis=1)
    kernel_length = tf.where(empty, 1, label_length)
    kernel_input = tf.where(empty, tf.maximum(input_length, 1), input_length)
    # Build the SparseTensor from the lengths, not from the values: a real
    # class 0 must not be dropped as if it were padding.
    max_length = tf.shape(labels)[1]
    mask = tf.sequence_mask(kernel_length, max_length)
    indices = tf.where(mask)
    values = tf.gather_nd(labels, indices)
    shape = tf.cast(tf.shape(labels), tf.int64)
    sparse = tf.SparseTensor(indices, values, shape)
    loss = tf.nn.ctc_loss(
        labels=sparse,
        logits=log_probs,
        label_length=None,
        logit_length=kernel_input,
        logits_time_major=False,
        blank_index=blank_index,
    )

    def with_empty_labels() -> Any:
        rows = tf.cast(tf.where(empty), tf.int32)  # (K, 1)
        gathered = tf.gather_nd(log_probs, rows)  # (K, T, C)
        blank_log_probs = tf.nn.log_softmax(gathered, axis=-1)[:, :, blank_index]
        frames = tf.sequence_mask(
            tf.gather_nd(input_length, rows), tf.shape(log_probs)[1]
        )
        all_blank = -tf.reduce_sum(tf.where(frames, blank_log_probs, 0.0), axis=1)
        return tf.tensor_scatter_nd_update(loss, rows, all_blank)

    # A branch, not a zero-row gather: the gather's gradient would still be a
    # dense (B, T, C) scatter added to the kernel's, ~20% at C=5000.
    return tf.cond(tf.reduce_any(empty), with_empty_labels, lambda: loss)


def ctc_beam_search_native(
    log_probs: Any, input_length: Any, beam_width: int, top_paths: int, blank_index: int
) -> tuple[Any, Any]:
    """TensorFlow's beam decoder, with any blank index and any `top_paths`.

    Args:
        log_probs: float `(B, T, C)` batch-major logits or log-probabilities.
        input_length: int `(B,)`, each in `[0, T]`.
        beam_width: beams kept per step.
        top_paths: paths returned, `1 <= top_paths <= beam_width`.
        blank_index: the blank class, in `[0, C)`.

    Returns:
        Dense int32 paths `(top_paths, B, T)` padded with -1 and float32
        log-probability scores `(B, top_paths)`. Where a sample has fewer
        distinct labellings than `top_paths` (e.g. length 0), the missing
        paths are all -1 with score -inf.
    """
    import tensorflow as tf

    log_probs = tf.cast(log_probs, tf.float32)
    input_length = tf.cast(input_length, tf.int32)
    batch = tf.shape(log_probs)[0]
    steps = tf.shape(log_probs)[1]
    num_classes = tf.shape(log_probs)[2]
    # TF's decoder wants the blank last: move it there, then map classes back.
    order = tf.concat(
        [tf.range(blank_index), tf.range(blank_index + 1, num_classes), [blank_index]],
        axis=0,
    )
    moved = tf.gather(log_probs, order, axis=-1)
    # TF refuses ("Less leaves in the beam search than requested") a sample
    # with fewer distinct prefixes than top_paths, e.g. one of length 0, and
    # any input with no frames at all. So give each sample `extra` frames
    # after its end in which the blank has probability 1 and each label
    # exp(-1e30): real beams keep their scores exactly, each such frame adds
    # at least one (recognisable) fake prefix, and the time axis is never 0.
    extra = top_paths - 1
    fake_frame = tf.concat([tf.fill([num_classes - 1], _FAKE_LOG_PROB), [0.0]], 0)
    padding = tf.broadcast_to(fake_frame, [batch, max(extra, 1), num_classes])
    moved = tf.concat([moved, padding], axis=1)
    if extra:
        time = tf.range(steps + extra)[None, :]
        start = input_length[:, None]
        after = (time >= start) & (time < start + extra)
        moved = tf.where(after[:, :, None], fake_frame, moved)
    lengths = input_length + extra
    time_major = tf.transpose(moved, [1, 0, 2])
    decoded, log_probability = tf.nn.ctc_beam_search_decoder(
        time_major, lengths, beam_width=beam_width, top_paths=top_paths
    )
    fake = log_probability < _FAKE_LOG_PROB / 2
    log_probability = tf.where(fake, float("-inf"), log_probability)
    back = order[:-1]
    dense_shape = tf.cast(tf.stack([batch, steps + max(extra, 1)]), tf.int64)
    paths = []
    for i, sparse in enumerate(decoded):
        dense = tf.sparse.to_dense(
            tf.SparseTensor(sparse.indices, sparse.values + 1, dense_shape),
            default_value=0,
        )[:, :steps]
        mapped = tf.where(dense > 0, tf.gather(back, tf.maximum(dense - 1, 0)), -1)
        paths.append(tf.where(fake[:, i : i + 1], -1, mapped))
    return tf.cast(tf.stack(paths, axis=0), tf.int32), log_probability


def is_symbolic(x: Any) -> bool:
    """True for a graph tensor (inside `tf.function`), which has no value yet."""
    import tensorflow as tf

    return bool(tf.is_symbolic_tensor(x))


def numpy_function(
    fn: Any, inputs: list[Any], dtypes: list[str], shapes: list[tuple]
) -> list[Any]:
    """Run the NumPy function `fn` on `inputs` inside a graph (`tf.numpy_function`).

    For NumPy-only code reached from `model.predict` on TensorFlow (a plain
    graph, since such layers set `supports_jit=False`); it cannot run under
    XLA or be exported to a SavedModel.
    """
    import tensorflow as tf

    outputs = tf.numpy_function(fn, inputs, dtypes, stateful=False)
    for output, shape in zip(outputs, shapes, strict=True):
        output.set_shape(shape)
    return list(outputs)
