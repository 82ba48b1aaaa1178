"""Any object `assert_roundtrip` accepts, as a model both formats can hold.

A layer is wrapped in a model; a loss, metric, initializer, regularizer,
constraint, schedule or optimizer is embedded in a small compiled model.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from .._compare import _build_shapes


def _as_model(obj: Any, inputs: Any) -> tuple[keras.Model, str]:
    if isinstance(obj, keras.Model):
        return obj, "model"
    if isinstance(obj, keras.layers.Layer):
        return _wrap_layer(obj, inputs), "layer"
    schedules = keras.optimizers.schedules.LearningRateSchedule
    if isinstance(obj, keras.optimizers.Optimizer):
        return _probe_model(optimizer=obj), "optimizer"
    if isinstance(obj, schedules):
        return _probe_model(
            optimizer=keras.optimizers.SGD(learning_rate=obj)
        ), "schedule"
    if isinstance(obj, keras.losses.Loss) or (callable(obj) and _is_function(obj)):
        return _probe_model(loss=obj), "loss"
    if isinstance(obj, keras.metrics.Metric):
        return _probe_model(metrics=[obj]), "metric"
    if isinstance(obj, keras.initializers.Initializer):
        return _probe_model(kernel_initializer=obj), "initializer"
    if isinstance(obj, keras.regularizers.Regularizer):
        return _probe_model(kernel_regularizer=obj), "regularizer"
    if isinstance(obj, keras.constraints.Constraint):
        return _probe_model(kernel_constraint=obj), "constraint"
    message = (
        "assert_roundtrip argument 'obj' must be a Keras model, layer, loss, "
        "metric, initializer, regularizer, constraint, learning-rate schedule or "
        f"optimizer. Received: obj={obj!r} (type {type(obj).__name__}). Pass the "
        "object itself, or a model that uses it."
    )
    raise TypeError(message)


def _is_function(obj: Any) -> bool:
    import types

    return isinstance(obj, types.FunctionType)


def _wrap_layer(layer: keras.layers.Layer, inputs: Any) -> keras.Model:
    if inputs is not None:
        arrays = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        specs = [
            keras.Input(np.shape(a)[1:], dtype=str(np.asarray(a).dtype)) for a in arrays
        ]
    else:
        shapes = _build_shapes(layer)
        if shapes is None:
            message = (
                f"assert_roundtrip cannot wrap layer '{layer.name}' in a model: "
                "expected a built layer or example `inputs`. Received: an unbuilt "
                f"{type(layer).__name__} and inputs=None. Call the layer once, or "
                "pass inputs=..."
            )
            raise ValueError(message)
        specs = [keras.Input(shape[1:]) for shape in shapes]
    outputs = layer(*specs)
    return keras.Model(
        specs if len(specs) > 1 else specs[0], outputs, name=f"{layer.name}_probe"
    )


def _probe_model(
    loss: Any = "mean_squared_error",
    metrics: list[Any] | None = None,
    optimizer: Any = None,
    **dense_kwargs: Any,
) -> keras.Model:
    inputs = keras.Input((4,), name="probe_input")
    outputs = keras.layers.Dense(3, name="probe_dense", **dense_kwargs)(inputs)
    model = keras.Model(inputs, outputs, name="probe")
    if loss == "mean_squared_error":
        loss = keras.losses.MeanSquaredError()
    model.compile(
        # Plain SGD has no slots, so a legacy .h5 file can hold its whole state
        # and only the object under test decides the outcome.
        optimizer=optimizer if optimizer is not None else keras.optimizers.SGD(1e-2),
        loss=loss,
        metrics=metrics or [],
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 4)).astype("float32")
    y = rng.uniform(size=(8, 3)).astype("float32")
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)  # creates optimizer state
    return model
