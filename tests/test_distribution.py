"""assert_roundtrip on models trained under a distribution strategy (issue #6)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import serializable
from serializable import SerializableLayer, SerializableModel, assert_roundtrip


class Wrapped(SerializableLayer, package="test_distribution"):
    """Wraps a layer passed in, like `Gated(Dense(8))`."""

    def __init__(self, inner, **kwargs):
        super().__init__(**kwargs)
        self.inner = inner

    def call(self, x):
        return self.inner(x)


class TwoBlocks(SerializableModel, package="test_distribution"):
    """A subclassed model that makes an unnamed Dense in __init__ and wraps it."""

    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.block = Wrapped(keras.layers.Dense(units))
        self.head = keras.layers.Dense(2)

    def call(self, x):
        return self.head(self.block(x))


def _trained_two_blocks() -> tuple[keras.Model, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 4)).astype("float32")
    y = rng.normal(size=(8, 2)).astype("float32")
    model = TwoBlocks()
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    return model, x, y


def test_roundtrip_accepts_renumbered_nested_layer_names(tmp_path):
    """A Dense made in a model's __init__ and passed to a child is renumbered on reload ('dense' -> 'dense_1'); that is not a lost setting."""
    model, x, y = _trained_two_blocks()
    report = assert_roundtrip(
        model, x, targets=y, formats=("keras",), tmp_path=tmp_path
    )
    assert "optimizer state" in report.formats["keras"].checked


def test_roundtrip_compares_slots_of_subclassed_models(tmp_path):
    """Optimizer slots are compared even when a reloaded subclassed model's variable paths, and so its slot names, differ from the original's."""
    from serializable import _roundtrip

    model, x, _ = _trained_two_blocks()
    path = serializable.save_model(model, tmp_path / "model.keras")
    restored = serializable.load_model(path)
    slots = [v.path for v in restored.optimizer.variables]
    assert slots != [v.path for v in model.optimizer.variables]  # what broke it
    problems: list[str] = []
    _roundtrip._check_optimizer(model, restored, problems)
    assert problems == []

    last = restored.optimizer.variables[-1]  # the head bias's second moment
    last.assign(np.asarray(keras.ops.convert_to_numpy(last)) + 1.0)
    _roundtrip._check_optimizer(model, restored, problems)
    assert len(problems) == 1, problems
    assert "optimizer variable" in problems[0] and "differs" in problems[0]
    assert model.optimizer.variables[-1].path in problems[0]


def test_roundtrip_reads_iterations_of_mirrored_optimizer(tmp_path):
    """assert_roundtrip on a model under MirroredStrategy reads its optimizer's iterations (int() of a MirroredVariable raised TypeError)."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.distribute needs KERAS_BACKEND=tensorflow")
    tf = pytest.importorskip("tensorflow")
    # One device is enough to make MirroredVariables; two need a fresh process.
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    x = np.ones((4, 3), "float32")
    with strategy.scope():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        model.compile(optimizer="adam", loss="mse")
        model.fit(x, np.zeros((4, 2), "float32"), verbose=0)
        assert isinstance(
            model.optimizer.iterations.value, tf.distribute.DistributedValues
        )
        report = assert_roundtrip(model, x, formats=("keras",), tmp_path=tmp_path)
    assert "optimizer state" in report.formats["keras"].checked
