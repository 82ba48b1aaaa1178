"""`save_model` and `load_model` take Keras's own parameter names and positions.

Swapping `keras.saving.load_model` for `serializable.load_model` (and the same
for `save_model`) must not break a call that works with Keras.
"""

from __future__ import annotations

import inspect

import keras
import numpy as np
import pytest

import serializable
from serializable import ModelFileError


def small_model() -> keras.Model:
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.ones((4, 3)), np.ones((4, 2)), epochs=1, verbose=0)
    return model


def lambda_model() -> keras.Model:
    inputs = keras.Input((3,))
    outputs = keras.layers.Lambda(lambda x: x * 2.0)(inputs)
    return keras.Model(inputs, outputs)


def test_signatures_match_keras():
    """The parameters Keras has come first, in Keras's order, with its defaults."""
    for ours, theirs in (
        (serializable.load_model, keras.saving.load_model),
        (serializable.save_model, keras.saving.save_model),
    ):
        keras_params = [
            p
            for p in inspect.signature(theirs).parameters.values()
            if p.kind is not p.VAR_KEYWORD
        ]
        our_params = list(inspect.signature(ours).parameters.values())
        assert [(p.name, p.default) for p in our_params[: len(keras_params)]] == [
            (p.name, p.default) for p in keras_params
        ]
        assert all(p.kind is p.KEYWORD_ONLY for p in our_params[len(keras_params) :])


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_keras_call_forms(tmp_path, suffix):
    """Positional, keyword and `filepath=` forms of both functions work."""
    model = small_model()
    x = np.ones((2, 3), "float32")
    expected = keras.ops.convert_to_numpy(model(x))
    path = tmp_path / f"m{suffix}"

    serializable.save_model(model, path)
    serializable.save_model(model, path, True)  # overwrite, positional
    serializable.save_model(model, filepath=path, overwrite=True, zipped=None)
    serializable.save_model(model, str(path), True, True)  # zipped, positional
    serializable.save_model(model=model, filepath=path, zipped=True)
    with pytest.raises(FileExistsError):
        serializable.save_model(model, path, False)

    loaded = [
        serializable.load_model(path),
        serializable.load_model(filepath=path),
        serializable.load_model(path, None, False),  # custom_objects, compile
        serializable.load_model(path, {}, True, True),  # ... safe_mode
        serializable.load_model(path, safe_mode=True),
        serializable.load_model(path, custom_objects=None, compile=False),
    ]
    for restored in loaded:
        np.testing.assert_allclose(keras.ops.convert_to_numpy(restored(x)), expected)
    assert getattr(loaded[0], "optimizer", None) is not None
    assert getattr(loaded[2], "optimizer", None) is None  # compile=False, positional


def test_zipped_false_is_refused_with_the_keras_route(tmp_path):
    """Keras's unzipped directory cannot be replaced atomically: a clear error."""
    path = tmp_path / "m.keras"
    with pytest.raises(ValueError, match=r"zipped=False") as info:
        serializable.save_model(small_model(), path, zipped=False)
    assert "keras.saving.save_model" in str(info.value)
    assert not path.exists()


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_safe_mode_false_is_the_explicit_opt_in(tmp_path, suffix):
    """A Lambda layer's bytecode is refused by default, loaded with safe_mode=False."""
    model = lambda_model()
    path = tmp_path / f"lambda{suffix}"
    model.save(path)  # Keras's own writer: the library refuses nothing here
    with pytest.raises(ModelFileError, match=r"safe_mode"):
        serializable.load_model(path)
    restored = serializable.load_model(path, safe_mode=False)
    x = np.ones((2, 3), "float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(restored(x)), 2 * x)
    restored = serializable.load_model(path, None, True, False)  # positional
    np.testing.assert_allclose(keras.ops.convert_to_numpy(restored(x)), 2 * x)
