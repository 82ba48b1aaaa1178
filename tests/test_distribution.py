"""assert_roundtrip on models trained under a distribution strategy (issue #6)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from serializable import assert_roundtrip


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
