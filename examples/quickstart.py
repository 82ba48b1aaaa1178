"""Quick start: a custom layer with nested objects, saved and reloaded in both formats.

Run it with `python3 dev.py demo` (sets up .venv first), or directly:

    KERAS_BACKEND=tensorflow python examples/quickstart.py

Nothing below writes get_config, from_config or custom_objects.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np

import serializable


@serializable.register_keras_serializable(package="quickstart")
def scaled_tanh(x):
    """A custom activation: registered, so it can be saved by name."""
    return 1.7159 * keras.ops.tanh(2.0 / 3.0 * x)


class GatedResidual(serializable.SerializableLayer, package="quickstart"):
    """A layer whose constructor takes things Keras's auto-config refuses.

    A nested layer, an initializer object, a custom activation function, a
    numpy array and a tuple: all saved, all restored as the same types.
    """

    def __init__(
        self,
        projection,
        gate_initializer="zeros",
        activation=scaled_tanh,
        feature_scale=None,
        dropout=(0.1, 0.0),
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.projection = projection
        self.gate_initializer = gate_initializer
        self.activation = activation
        self.feature_scale = 1.0 if feature_scale is None else feature_scale
        self.dropout = dropout

    def build(self, input_shape):
        self.projection.build(input_shape)
        self.gate = self.add_weight(
            shape=(input_shape[-1],), initializer=self.gate_initializer, name="gate"
        )

    def call(self, x):
        x = x * self.feature_scale
        return x + self.activation(self.projection(x)) * keras.ops.sigmoid(self.gate)


def build_model() -> keras.Model:
    inputs = keras.Input((4,))
    x = GatedResidual(
        keras.layers.Dense(4, name="projection"),
        gate_initializer=keras.initializers.HeNormal(seed=1),
        feature_scale=np.array([1.0, 0.5, 2.0, 1.0], dtype="float32"),
        name="gated",
    )(inputs)
    outputs = keras.layers.Dense(1)(x)
    return keras.Model(inputs, outputs)


def main() -> int:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 4)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5], [3.0]], dtype="float32")).astype("float32")

    model = build_model()
    model.compile(
        optimizer=keras.optimizers.Adam(0.01), loss=keras.losses.MeanSquaredError()
    )
    history = model.fit(x, y, epochs=20, batch_size=32, verbose=0)
    print(
        f"trained 20 epochs: loss {history.history['loss'][0]:.3f} -> "
        f"{history.history['loss'][-1]:.3f}"
    )
    expected = model.predict(x[:8], verbose=0)

    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for suffix in ("keras", "h5"):
            path = Path(tmp) / f"quickstart.{suffix}"
            model.save(path)
            restored = keras.models.load_model(path)  # no custom_objects
            got = restored.predict(x[:8], verbose=0)
            layer = restored.get_layer("gated")
            same = np.array_equal(got, expected)
            ok &= same
            print(
                f".{suffix:<5} {path.stat().st_size / 1024:6.1f} KiB  reloaded "
                f"{type(layer).__name__}("
                f"projection={type(layer.projection).__name__}, "
                f"gate_initializer={type(layer.gate_initializer).__name__}, "
                f"activation={layer.activation.__name__}, "
                f"feature_scale={layer.feature_scale!r}, dropout={layer.dropout})"
                f"  outputs identical: {same}"
            )
    print("OK: outputs match after reload in both formats" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
