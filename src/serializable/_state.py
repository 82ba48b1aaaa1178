"""Non-weight state that must survive a save: keep it as a non-trainable weight.

Keras files hold two things for a layer: its config and its variables.
Anything else a layer computes or is handed (a lookup table, statistics, an
embedding matrix built outside training) is lost on reload
(docs/pitfalls.md#non-weight-state). Small state
belongs in a constructor argument, which the generated config saves; large
numeric state belongs in a variable, which both formats save with the weights.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from ._errors import UnserializableArgumentError

__all__ = ["add_state_weight"]


def add_state_weight(
    layer: keras.layers.Layer, name: str, value: Any, dtype: str | None = None
) -> keras.Variable:
    """Store a numeric array on `layer` as a non-trainable weight and return it.

    The weight is saved and restored with the layer's other weights in both
    `.keras` and `.h5`, and the optimizer never touches it. Call it from
    `__init__` or `build`, like `add_weight`.

    Args:
        layer: The layer that owns the state.
        name: The weight's name, unique within the layer.
        value: Anything `numpy.asarray` accepts with a bool, int or float dtype.
        dtype: The variable's dtype. Defaults to the array's own dtype.

    Returns:
        The `keras.Variable` holding the value; read it in `call` as a tensor.

    Raises:
        UnserializableArgumentError: If `value` is not numeric, e.g. an array
            of strings (a `TypeError`).

    Example:

    ```python
    import numpy as np
    import keras
    from serializable import SerializableLayer, add_state_weight

    class Lookup(SerializableLayer):
        def __init__(self, table_size=1000, **kwargs):
            super().__init__(**kwargs)
            table = np.random.default_rng(0).normal(size=(table_size, 8))
            self.table = add_state_weight(self, "table", table.astype("float32"))

        def call(self, ids):
            return keras.ops.take(self.table, ids, axis=0)
    ```
    """
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        message = (
            f"add_state_weight on layer '{layer.name}' argument 'value' must be "
            f"numeric: expected a bool, int or float array. Received: "
            f"value with dtype {array.dtype} and shape {array.shape}. Encode it "
            "as numbers (e.g. token ids), or pass small non-numeric state as a "
            "constructor argument instead."
        )
        raise UnserializableArgumentError(message)
    variable = layer.add_weight(
        shape=array.shape,
        dtype=dtype or array.dtype.name,
        initializer="zeros",
        trainable=False,
        name=name,
    )
    variable.assign(array)
    return variable
