"""Everything in the library that depends on which Keras backend runs.

The rest of the library uses only `keras`, `keras.ops` and NumPy, and asks
this package when it must know the backend. Only the modules here import a
backend framework, each only when Keras runs on it (a test enforces both):

* `tensorflow_ops`: TensorFlow's native CTC loss kernel (sparse labels) and
  beam decoder, which Keras does not use.
* `jax_ops`: `jax.jit` for the CTC loss, so eager calls trace once.
* `torch_ops`: torch's native CTC loss kernel, called directly.

Each has a backend-neutral fallback in the module that calls it.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from . import jax_ops as jax_ops
from . import tensorflow_keras2 as tensorflow_keras2  # registers Keras 2's op layers
from . import tensorflow_ops as tensorflow_ops
from . import torch_ops as torch_ops


def name() -> str:
    """The backend Keras runs on: "tensorflow", "jax", "torch", ..."""
    return str(keras.backend.backend())


def is_tensorflow() -> bool:
    return name() == "tensorflow"


def array_view(variable: Any) -> np.ndarray:
    """A variable's value as a NumPy array, without a copy where possible.

    On TensorFlow the array is a read-only view of the tensor read from the
    variable: a snapshot, since a later assignment copies on write. Keras's
    `convert_to_numpy` copies the value twice (`np.array` of the variable's
    own copying `numpy()`), more than half of Keras's own `.h5` save of a
    large model. Elsewhere it is `keras.ops.convert_to_numpy`.
    """
    # A Keras variable's `value` is the backend's; a tf.Variable has read_value.
    read = getattr(getattr(variable, "value", None), "read_value", None)
    if read is not None and is_tensorflow():
        return np.asarray(read())
    return np.asarray(keras.ops.convert_to_numpy(variable))


def creates_unfilled_variables() -> bool:
    """Whether `.h5` loading may create variables straight from the file.

    Tested on TensorFlow only; JAX and torch take the ordinary path (build,
    initialize, assign), which is correct everywhere.
    """
    return is_tensorflow()


def keras2_tf_op(function: str) -> bool:
    """Whether a Keras 2 `TFOpLambda` calling `tf.<function>` can run here
    (TensorFlow backend only; see `tensorflow_keras2`)."""
    if not is_tensorflow():
        return False
    from . import tensorflow_keras2

    return tensorflow_keras2.resolve(function) is not None


def keras2_objects(config: Any) -> dict[str, Any]:
    """The classes Keras 2's `TFOpLambda` layers load as, where they can run."""
    if not is_tensorflow() or "OpLambda" not in repr(config):
        return {}
    from . import tensorflow_keras2

    return tensorflow_keras2.layers()
