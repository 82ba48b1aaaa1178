"""Compiling a loaded model from a legacy training config.

A legacy `.h5` file (and a Keras 2 file, once translated) records how the
model was compiled as a training config, which Keras's legacy deserializer
reads badly: it rejects loss and metric names such as `"mse"`
(docs/pitfalls.md#string-losses-in-h5) and knows only the older optimizers.
`compile_from_training` compiles from it with strings kept strings;
`compile_takes` is the check both formats make before calling a model's own
`compile`.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import keras

from . import _registry


def compile_from_training(
    model: keras.Model, training: dict[str, Any], objects: dict[str, Any]
) -> bool:
    """Compile from a legacy training config; strings stay strings. False
    when the model's own `compile` does not take them (`compile_takes`).

    See docs/pitfalls.md#string-losses-in-h5.
    """
    optimizer_config = training["optimizer_config"]
    name = (
        optimizer_config.get("class_name")
        if isinstance(optimizer_config, dict)
        else None
    )
    # vars(), not getattr: a name from a file never reaches a module's
    # __getattr__.
    keras_class = vars(keras.optimizers).get(name) if isinstance(name, str) else None
    if isinstance(name, str) and inspect.isclass(keras_class) and name not in objects:
        # Keras's legacy deserializer knows only the older optimizers (Lamb: no).
        objects = {**objects, name: keras_class}
    with keras.saving.custom_object_scope(objects):
        optimizer = keras.optimizers.deserialize(optimizer_config)
        loss = _nested(training.get("loss"), keras.losses.deserialize, objects)
        metrics = _nested(training.get("metrics"), keras.metrics.deserialize, objects)
        weighted = _nested(
            training.get("weighted_metrics"), keras.metrics.deserialize, objects
        )
    arguments = {
        "optimizer": optimizer,
        "loss": loss,
        "metrics": metrics,
        "weighted_metrics": weighted,
        "loss_weights": training.get("loss_weights"),
    }
    if not compile_takes(model, arguments):
        return False
    model.compile(**arguments)
    return True


def compile_takes(model: keras.Model, arguments: dict[str, Any]) -> bool:
    """Whether the model's `compile` takes the saved compile arguments; if not
    (a GAN's `compile(d_optimizer, g_optimizer, loss_fn)`, whose arguments no
    file records), warn that the model stays uncompiled, as Keras does."""
    try:
        inspect.signature(model.compile).bind(**arguments)
    except TypeError:
        warnings.warn(
            f"Model '{model.name}' was not compiled on load: its class's "
            "compile() does not take the saved compile arguments "
            f"({', '.join(sorted(arguments))}). Call compile() after loading, "
            "or give the class get_compile_config() and "
            "compile_from_config(config).",
            stacklevel=4,
        )
        return False
    return True


def _named(name: str, objects: dict[str, Any]) -> Any:
    """A loss or metric named by a string: the registered or passed custom
    function it names (Keras's `compile` cannot look those up), else the
    string itself, which Keras interprets ("mse", "accuracy"; see
    docs/pitfalls.md#string-losses-in-h5)."""
    registered = _registry.custom_objects()
    for key in (name, name.rsplit(">", 1)[-1]):
        if key in objects:
            return objects[key]
    if name in registered:
        return registered[name]
    # A Keras function compile cannot look up by name ("huber" as a metric).
    found = _registry.keras_function(name) if ">" not in name else None
    if inspect.isfunction(found):
        return found
    return name


def _nested(
    config: Any, deserialize: Any, objects: dict[str, Any] | None = None
) -> Any:
    if config is None:
        return config
    if isinstance(config, str):
        return config if objects is None else _named(config, objects)
    if isinstance(config, dict) and "class_name" in config:
        return deserialize(config)
    if isinstance(config, dict):
        return {
            key: _nested(value, deserialize, objects) for key, value in config.items()
        }
    if isinstance(config, (list, tuple)):
        return [_nested(value, deserialize, objects) for value in config]
    return config
