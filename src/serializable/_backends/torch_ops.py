"""torch-only fast paths, used only when Keras runs on the torch backend.

The one place in the library that imports torch. Everything here has a
backend-neutral fallback in the module that calls it:

* CTC loss: `torch.nn.functional.ctc_loss`, torch's native kernel (the one
  `keras.ops.ctc_loss` runs on torch too), called directly: the log-softmax
  runs on the contiguous batch-major tensor before the (free) time-major
  view, impossible alignments use torch's own `zero_infinity`, and none of
  Keras's per-call conversions and dtype resolution wrap it. That keeps the
  library's loss at or below the cost of `keras.ops.ctc_loss` on torch.
"""

from __future__ import annotations

from typing import Any


def available() -> bool:
    """True when Keras runs on torch (so torch is importable)."""
    import keras

    return keras.backend.backend() == "torch"


def ctc_loss_native(
    labels: Any,
    log_probs: Any,
    label_length: Any,
    input_length: Any,
    blank_index: int,
    zero_infinity: bool,
) -> Any:
    """Per-sample CTC loss with torch's native kernel, never negative.

    Args:
        labels: int `(B, L)`; entries past `label_length` are never read, so
            any padding value works.
        log_probs: float32 `(B, T, C)`, batch-major logits or log-probabilities.
        label_length: int `(B,)`.
        input_length: int `(B,)`, each in `[0, T]`.
        blank_index: the blank class, in `[0, C)`.
        zero_infinity: impossible alignments (torch's `inf` loss) get loss 0
            and gradient 0.
    """
    from torch.nn import functional

    time_major = functional.log_softmax(log_probs, dim=-1).transpose(0, 1)
    loss = functional.ctc_loss(
        time_major,
        labels,
        input_length,
        label_length,
        blank=blank_index,
        reduction="none",
        zero_infinity=zero_infinity,
    )
    # -log p can round to a hair below 0 for a near-certain labelling.
    return loss.clamp_min(0.0)
