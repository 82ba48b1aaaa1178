"""Keras 2's `TFOpLambda` / `SlicingOpLambda` layers, on the TensorFlow backend.

Keras 2 recorded a raw `tf.*` call in a functional model (`tf.nn.relu(x)`,
`x[:, 1:]`) as a layer naming the function (`"nn.relu"`,
`"__operators__.getitem"`). On TensorFlow the name is looked up as an
attribute path under the `tensorflow` module (no module is imported, nothing
outside `tf` is reachable) and the layer calls it. Other backends have no
`tf.*` functions; `_keras2.check` refuses those files with the replacement.
"""

from __future__ import annotations

import re
from typing import Any

import keras

_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def resolve(function: str) -> Any:
    """The `tf` function Keras 2 recorded as `function`, or None."""
    from . import tensorflow_ops

    if not tensorflow_ops.available() or not isinstance(function, str):
        return None
    if not _PATH.match(function):
        return None
    import tensorflow as tf

    target: Any = tf
    for part in function.split("."):
        if part.startswith("_") and part != "__operators__":
            return None
        target = getattr(target, part, None)
        if target is None:
            return None
    return target if callable(target) else None


def _slice(spec: Any) -> Any:
    if isinstance(spec, dict) and set(spec) <= {"start", "stop", "step"}:
        return slice(spec.get("start"), spec.get("stop"), spec.get("step"))
    if isinstance(spec, list):
        return tuple(_slice(item) for item in spec)
    if spec == "...":
        return Ellipsis
    return spec


@keras.saving.register_keras_serializable(package="serializable")
class TFOpLambda(keras.layers.Layer):
    """A Keras 2 `tf.*` call: `function` is its name under `tf`.

    Registered, so a converted model saves and reloads (on TensorFlow) with
    no `custom_objects`."""

    def __init__(self, function: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.function = function
        self._function = resolve(function)
        if self._function is None:
            message = (
                f"Cannot rebuild Keras 2 layer {self.name!r}: expected a TensorFlow "
                f"function. Received: function={function!r}, which is not one."
            )
            raise ValueError(message)

    def call(self, *args: Any, **kwargs: Any) -> Any:
        if "slice_spec" in kwargs:
            return self._function(args[0], _slice(kwargs["slice_spec"]))
        return self._function(*args, **kwargs)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "function": self.function}


@keras.saving.register_keras_serializable(package="serializable")
class SlicingOpLambda(TFOpLambda):
    """Keras 2's `x[...]` on a tensor (`tf.__operators__.getitem`)."""


def layers() -> dict[str, Any]:
    return {"TFOpLambda": TFOpLambda, "SlicingOpLambda": SlicingOpLambda}
