"""CTC loss: `ctc_loss`, `CTCLoss` and the `CTCLayer` endpoint.

One convention everywhere, whatever the backend:

* `y_pred` is batch-major `(B, T, C)`: logits (`from_logits=True`) or softmax
  probabilities (`from_logits=False`, Keras 2's `ctc_batch_cost` convention,
  computed as `log(p + 1e-7)` exactly like it);
* `blank_index` is any class; negative counts from the end (`-1` is Keras 2's
  blank-last convention);
* labels are `(B, L)` ints padded with `label_pad_value` (default -1) past
  their length; lengths may be given as `(B,)` or `(B, 1)`, and come from the
  padding (labels) or from the full time axis or a Keras mask (inputs) when not;
* `zero_infinity=True` gives impossible alignments (a label longer than its
  input allows) a loss of 0 and a gradient of 0 instead of inf or a finite
  wrong number; the loss is never negative;
* float16 / mixed precision inputs are computed in float32.

Each backend runs its fastest kernel: TensorFlow's native CTC kernel with
sparse labels (`tensorflow_ops`), torch's `torch.nn.functional.ctc_loss` called
directly (`torch_ops`), and on JAX `keras.ops.ctc_loss` compiled with
`jax.jit` together with the work around it (`jax_ops`); any other backend
runs `keras.ops.ctc_loss`.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from ._backends import jax_ops, tensorflow_ops, torch_ops
from ._bases import SerializableLayer, SerializableLoss

EPSILON = 1e-7  # Keras 2's ctc_batch_cost: log(y_pred + epsilon())


def _resolve_blank(blank_index: int, num_classes: int, where: str) -> int:
    if not -num_classes <= blank_index < num_classes:
        message = (
            f"{where} argument 'blank_index' must index one of the {num_classes} "
            f"classes of y_pred: expected -{num_classes} <= blank_index < "
            f"{num_classes}. Received: blank_index={blank_index}. Use 0 for "
            "Keras 3's convention or -1 for Keras 2's (blank last)."
        )
        raise ValueError(message)
    return blank_index % num_classes


def _lengths(value: Any, batch_shape: Any, name: str, where: str) -> Any:
    value = ops.convert_to_tensor(value)
    rank = len(value.shape)
    if rank == 2 and value.shape[-1] == 1:
        value = ops.squeeze(value, axis=-1)
    elif rank != 1:
        message = (
            f"{where} argument '{name}' must have shape (batch,) or (batch, 1). "
            f"Received: {name} with shape {tuple(value.shape)}. Pass one length "
            "per sample."
        )
        raise ValueError(message)
    return ops.cast(value, "int32")


def input_lengths(
    input_length: Any, mask: Any, batch: Any, steps: Any, where: str
) -> Any:
    """Frames per sample: as given, else from the Keras mask, else all `steps`."""
    if input_length is not None:
        return _lengths(input_length, batch, "input_length", where)
    if mask is not None:
        return ops.sum(ops.cast(mask, "int32"), axis=1)
    return ops.full((batch,), steps, dtype="int32")


def check_y_pred_rank(y_pred: Any, where: str) -> None:
    """`y_pred` must be (batch, time, classes), for the loss and the decoders."""
    if len(y_pred.shape) != 3:
        message = (
            f"{where} argument 'y_pred' must be (batch, time, classes). Received: "
            f"y_pred with shape {tuple(y_pred.shape)}. Put the class axis last "
            "(e.g. the output of a Dense(num_classes) applied per time step)."
        )
        raise ValueError(message)


def _check_ranks(labels: Any, y_pred: Any, where: str) -> None:
    check_y_pred_rank(y_pred, where)
    if len(labels.shape) != 2:
        message = (
            f"{where} argument 'labels' must be (batch, max_label_length) ints "
            f"padded past each length. Received: labels with shape "
            f"{tuple(labels.shape)}. Pad label sequences to a common length."
        )
        raise ValueError(message)


def _to_numpy(value: Any) -> np.ndarray:
    try:  # the fast path: NumPy, CPU torch, JAX and eager TensorFlow arrays
        return np.asarray(value)
    except Exception:  # e.g. a torch tensor on another device
        return np.asarray(ops.convert_to_numpy(value))


def _concrete(*values: Any) -> list[np.ndarray] | None:
    """The values as NumPy arrays when they exist (eager), else None."""
    try:
        arrays = [_to_numpy(value) for value in values]
    except Exception:  # symbolic: a tf.function graph or a jax.jit trace
        return None
    return None if any(a.dtype == object for a in arrays) else arrays


def _validate_values(
    labels: Any,
    label_length: Any,
    input_length: Any,
    num_classes: int,
    steps: int,
    blank: int,
    zero_infinity: bool,
    where: str,
) -> None:
    """Check lengths and label values eagerly; inside a compiled step they are symbolic.

    One pass of vectorised checks on the common (valid) path; the messages
    are worked out only when something is wrong.
    """
    arrays = _concrete(labels, label_length, input_length)
    if arrays is None:
        return
    labels_np, lengths, inputs = arrays
    for name, values, most in (
        ("label_length", lengths, labels_np.shape[1]),
        ("input_length", inputs, steps),
    ):
        if values.size and (values.min() < 0 or values.max() > most):
            value = values[(values < 0) | (values > most)][0]
            message = (
                f"{where} argument '{name}' must be within [0, {most}] (the "
                f"{'label' if name == 'label_length' else 'time'} axis). Received: "
                f"{name} value {int(value)}. Pass lengths that fit the padded "
                "arrays."
            )
            raise ValueError(message)
    if labels_np.size == 0:
        return
    positions = np.arange(labels_np.shape[1]) < lengths[:, None]
    invalid = (labels_np < 0) | (labels_np >= num_classes) | (labels_np == blank)
    if np.any(invalid & positions):
        real = labels_np[positions]
        bad = real[(real < 0) | (real >= num_classes)]
        if bad.size:
            message = (
                f"{where} argument 'labels' must hold class indices in [0, "
                f"{num_classes}) within each label length. Received: label value "
                f"{int(bad[0])}. Check the label encoding, or pass label_length / "
                "label_pad_value so padding is not read as a label."
            )
            raise ValueError(message)
        message = (
            f"{where} argument 'labels' must not contain the blank class: expected "
            f"labels other than blank_index={blank}. Received: a label equal to "
            f"{blank}. Shift the label encoding, or choose another blank_index."
        )
        raise ValueError(message)
    if not zero_infinity:
        repeats = np.sum(
            (labels_np[:, 1:] == labels_np[:, :-1]) & positions[:, 1:], axis=1
        )
        needed = lengths + repeats
        too_long = np.flatnonzero(needed > inputs)
        if too_long.size:
            i = int(too_long[0])
            message = (
                f"{where}: sample {i} cannot be aligned: expected its label (length "
                f"{int(lengths[i])}, {int(repeats[i])} repeated neighbours) to fit in "
                f"its input. Received: input_length={int(inputs[i])}, but "
                f"{int(needed[i])} frames are needed. Use a longer input, a shorter "
                "label, or zero_infinity=True to give such samples zero loss."
            )
            raise ValueError(message)


def ctc_loss(
    labels: Any,
    y_pred: Any,
    input_length: Any = None,
    label_length: Any = None,
    *,
    mask: Any = None,
    blank_index: int = 0,
    from_logits: bool = True,
    label_pad_value: int = -1,
    zero_infinity: bool = False,
) -> Any:
    """Compute the CTC loss of each sample, on any backend.

    Args:
        labels: int `(B, L)` label sequences, padded with `label_pad_value`.
        y_pred: `(B, T, C)` logits, or probabilities with `from_logits=False`.
        input_length: `(B,)` or `(B, 1)` valid frames per sample. Defaults to
            the frames a Keras `mask` keeps, else all `T`.
        label_length: `(B,)` or `(B, 1)`. Defaults to the number of labels
            before the first `label_pad_value`.
        mask: optional `(B, T)` boolean mask of valid frames.
        blank_index: the blank class; negative counts from the end.
        from_logits: `y_pred` holds logits (True) or softmax outputs (False).
        label_pad_value: the padding value in `labels`.
        zero_infinity: give impossible alignments zero loss and zero gradient.

    Returns:
        float32 `(B,)` per-sample losses, never negative.

    Raises:
        ValueError: For wrong ranks, a blank index out of range, and (when the
            values are known, i.e. eagerly) labels out of range, equal to the
            blank, or too long for their input without `zero_infinity`, and
            label or input lengths outside the padded arrays.

    Example:

    ```python
    import numpy as np
    from serializable.ctc import ctc_loss

    logits = np.random.default_rng(0).normal(size=(2, 10, 5)).astype("float32")
    labels = np.array([[1, 2, 2], [3, -1, -1]])
    loss = ctc_loss(labels, logits)  # shape (2,)
    ```
    """
    return _ctc_loss(
        labels,
        y_pred,
        input_length,
        label_length,
        mask,
        blank_index,
        from_logits,
        label_pad_value,
        zero_infinity,
        "ctc_loss",
    )


def _ctc_loss(
    labels: Any,
    y_pred: Any,
    input_length: Any,
    label_length: Any,
    mask: Any,
    blank_index: int,
    from_logits: bool,
    label_pad_value: int,
    zero_infinity: bool,
    where: str,
) -> Any:
    y_pred = ops.convert_to_tensor(y_pred)
    labels = ops.convert_to_tensor(labels)
    _check_ranks(labels, y_pred, where)
    num_classes = y_pred.shape[-1]
    blank = _resolve_blank(blank_index, num_classes, where)
    batch, steps = ops.shape(y_pred)[0], ops.shape(y_pred)[1]
    labels = ops.cast(labels, "int32")
    if label_length is None:
        not_pad = ops.cast(ops.not_equal(labels, label_pad_value), "int32")
        # Length = labels before the first pad value (cumulative product).
        label_length = ops.sum(ops.cumprod(not_pad, axis=1), axis=1)
    else:
        label_length = _lengths(label_length, batch, "label_length", where)
    input_length = input_lengths(input_length, mask, batch, steps, where)
    _validate_values(
        labels,
        label_length,
        input_length,
        num_classes,
        y_pred.shape[1],
        blank,
        zero_infinity,
        where,
    )
    log_probs = ops.cast(y_pred, "float32")
    if not from_logits:
        log_probs = ops.log(log_probs + EPSILON)
    if torch_ops.available():
        return torch_ops.ctc_loss_native(
            labels, log_probs, label_length, input_length, blank, zero_infinity
        )
    if tensorflow_ops.available():
        return _guarded_loss(
            _tf_native_loss,
            labels,
            log_probs,
            label_length,
            input_length,
            blank,
            zero_infinity,
        )
    loss_fn = _keras_loss
    if jax_ops.available():
        loss_fn = jax_ops.jit(_keras_loss, ("blank", "zero_infinity"))
    return loss_fn(
        labels,
        log_probs,
        label_length,
        input_length,
        blank=blank,
        zero_infinity=zero_infinity,
    )


def _guarded_loss(
    kernel: Any,
    labels: Any,
    log_probs: Any,
    label_length: Any,
    input_length: Any,
    blank: int,
    zero_infinity: bool,
) -> Any:
    """Run `kernel` with pads replaced, `zero_infinity` applied, never negative."""
    # Padding inside the label length is what the kernels read; outside it,
    # replace pads by a valid class so no backend trips over -1.
    positions = ops.arange(ops.shape(labels)[1])[None, :]
    inside = positions < label_length[:, None]
    filler = 1 if blank == 0 else 0
    labels = ops.where(inside, labels, filler)
    feasible = None
    if zero_infinity:
        same = ops.logical_and(ops.equal(labels[:, 1:], labels[:, :-1]), inside[:, 1:])
        needed = label_length + ops.sum(ops.cast(same, "int32"), axis=1)
        feasible = needed <= input_length
        # An empty label is always alignable: compute something finite for
        # impossible rows, then zero it; a NaN/inf branch would poison grads.
        label_length = ops.where(feasible, label_length, 0)
    loss = kernel(labels, log_probs, label_length, input_length, blank)
    if feasible is not None:
        loss = ops.where(feasible, loss, ops.zeros_like(loss))
    return ops.maximum(loss, 0.0)


def _keras_loss(
    labels: Any,
    log_probs: Any,
    label_length: Any,
    input_length: Any,
    blank: int,
    zero_infinity: bool,
) -> Any:
    """`keras.ops.ctc_loss` with the library's conventions (JAX and others)."""
    return _guarded_loss(
        _keras_ctc, labels, log_probs, label_length, input_length, blank, zero_infinity
    )


def _tf_native_loss(
    labels: Any, log_probs: Any, label_length: Any, input_length: Any, blank: int
) -> Any:
    """TensorFlow's native kernel; it handles empty labels itself, at no cost
    to the rows whose label is not empty."""
    return tensorflow_ops.ctc_loss_native(
        labels, log_probs, label_length, input_length, blank
    )


def _keras_ctc(
    labels: Any, log_probs: Any, label_length: Any, input_length: Any, blank: int
) -> Any:
    """keras.ops.ctc_loss, with the blank moved to its `mask_index`."""
    return ops.ctc_loss(labels, log_probs, label_length, input_length, mask_index=blank)


class CTCLoss(SerializableLoss, package="serializable"):
    """CTC as a `keras.losses.Loss`, for `model.compile(loss=CTCLoss(...))`.

    `y_true` is the padded label batch; input lengths are the full time axis
    (use `CTCLayer` to pass lengths). Same conventions as `ctc_loss`.

    Args:
        blank_index: the blank class; negative counts from the end.
        from_logits: `y_pred` holds logits (True) or softmax outputs (False).
        label_pad_value: the padding value in the labels.
        zero_infinity: give impossible alignments zero loss and gradient.
        **kwargs: `name`, `reduction`, `dtype` as for any Keras loss.

    Example:

    ```python
    import keras
    from serializable.ctc import CTCLoss

    model = keras.Sequential([keras.Input((50, 16)), keras.layers.Dense(28)])
    model.compile(optimizer="adam", loss=CTCLoss(blank_index=-1))
    ```
    """

    def __init__(
        self,
        blank_index: int = 0,
        from_logits: bool = True,
        label_pad_value: int = -1,
        zero_infinity: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("name", "ctc")
        super().__init__(**kwargs)
        self.blank_index = blank_index
        self.from_logits = from_logits
        self.label_pad_value = label_pad_value
        self.zero_infinity = zero_infinity

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return _ctc_loss(
            y_true,
            y_pred,
            None,
            None,
            None,
            self.blank_index,
            self.from_logits,
            self.label_pad_value,
            self.zero_infinity,
            "CTCLoss",
        )


class CTCLayer(SerializableLayer, package="serializable"):
    """The CTC endpoint: adds the batch CTC loss and returns `y_pred` unchanged.

    Call it as `CTCLayer(...)(y_pred, labels[, input_length, label_length])`;
    `model.compile(optimizer=...)` with no loss then trains on it. Lengths may
    be `(batch,)` or `(batch, 1)`. Without `input_length`, a Keras mask on
    `y_pred` (or else the full time axis) gives it; without `label_length`,
    the labels' padding gives it. The layer saves and reloads with all its
    settings in `.keras` and `.h5`.

    Args:
        blank_index: the blank class; negative counts from the end (-1 is
            Keras 2's convention).
        from_logits: `y_pred` holds logits (True) or softmax outputs (False,
            numerically matching Keras 2's `ctc_batch_cost`).
        label_pad_value: the padding value in the labels.
        zero_infinity: give impossible alignments zero loss and zero gradient.
        **kwargs: `name`, `dtype`, `trainable` as for any layer.

    Example:

    ```python
    import keras
    from serializable.ctc import CTCLayer

    frames = keras.Input((50, 16), name="frames")
    labels = keras.Input((10,), dtype="int32", name="labels")
    y_pred = keras.layers.Dense(28)(frames)
    outputs = CTCLayer(blank_index=-1)(y_pred, labels)
    model = keras.Model([frames, labels], outputs)
    model.compile(optimizer="adam")
    ```
    """

    def __init__(
        self,
        blank_index: int = 0,
        from_logits: bool = True,
        label_pad_value: int = -1,
        zero_infinity: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.blank_index = blank_index
        self.from_logits = from_logits
        self.label_pad_value = label_pad_value
        self.zero_infinity = zero_infinity
        self.supports_masking = True

    def call(
        self,
        y_pred: Any,
        labels: Any,
        input_length: Any = None,
        label_length: Any = None,
        y_pred_mask: Any = None,
    ) -> Any:
        # Keras hands a multi-input layer each input's mask as `<arg>_mask`.
        frame_mask = y_pred_mask
        loss = _ctc_loss(
            labels,
            y_pred,
            input_length,
            label_length,
            frame_mask,
            self.blank_index,
            self.from_logits,
            self.label_pad_value,
            self.zero_infinity,
            f"CTCLayer '{self.name}'",
        )
        self.add_loss(ops.mean(loss))
        return y_pred

    def compute_output_spec(self, y_pred: Any, *args: Any, **kwargs: Any) -> Any:
        return keras.KerasTensor(y_pred.shape, dtype=y_pred.dtype)

    def compute_mask(
        self, y_pred: Any, *args: Any, mask: Any = None, **kwargs: Any
    ) -> Any:
        return mask[0] if isinstance(mask, (list, tuple)) else mask
