"""Never worse than plain Keras: defects found by running the library as a
drop-in on code nobody here wrote (issue "Never worse than plain Keras").

Each test reproduces one case where plain Keras reloads a model exactly and
the library did not (or wrote a file it could not read), and checks the
library is now exact, or refuses at save time with a clear error.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import serializable
from serializable import register_keras_serializable as register
from serializable._errors import MissingClassError

from .test_pitfalls import _OwnCompileBody  # overrides compile(), like keras-hub tasks

X = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
Y = np.random.default_rng(1).normal(size=(8, 1)).astype("float32")


def _dense(*layers: keras.layers.Layer) -> keras.Model:
    return keras.Sequential([keras.Input((4,)), *layers, keras.layers.Dense(1)])


def _max_diff(a: keras.Model, b: keras.Model, x: np.ndarray = X) -> float:
    return float(np.max(np.abs(a.predict(x, verbose=0) - b.predict(x, verbose=0))))


@register("never_worse")
class ApplyFn(keras.layers.Layer):
    def __init__(self, fn, **kwargs):
        super().__init__(**kwargs)
        self.fn = fn

    def call(self, x):
        return self.fn(x)


BUILTIN_FUNCTIONS = (
    keras.activations.relu,
    keras.activations.gelu,
    keras.activations.hard_sigmoid,
    keras.activations.sigmoid,
    keras.activations.softmax,
)


def test_builtin_function_objects_are_not_missing_classes(tmp_path, fmt):
    model = _dense(*(ApplyFn(fn) for fn in BUILTIN_FUNCTIONS))
    model.compile("adam", loss=keras.losses.mean_squared_error)
    model.fit(X, Y, verbose=0)
    path = tmp_path / f"model.{fmt}"
    serializable.save_model(model, path, verify=True)
    restored = serializable.load_model(path)
    assert _max_diff(model, restored) == 0.0
    restored.fit(X, Y, verbose=0)  # the loss function came back usable


def test_builtin_function_not_listed_missing_by_inspect(tmp_path):
    from serializable import _inspect

    model = _dense(ApplyFn(keras.activations.relu))
    model.compile("adam", loss=keras.losses.mean_squared_error)
    model.fit(X, Y, verbose=0)
    for fmt in ("keras", "h5"):
        path = tmp_path / f"model.{fmt}"
        serializable.save_model(model, path)
        contents = _inspect.read_file(path)
        assert [
            r for r in _inspect.required_classes(contents) if not r.importable
        ] == []


def test_adapted_normalization_in_h5_is_exact(tmp_path):
    norm = keras.layers.Normalization()
    norm.adapt(X * 7 + 3)
    model = _dense(norm)
    serializable.save_model(model, tmp_path / "m.h5")
    restored = serializable.load_model(tmp_path / "m.h5")
    assert _max_diff(model, restored) == 0.0


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="string layers need TensorFlow"
)
@pytest.mark.parametrize("output_mode", ["int", "tf_idf"])
def test_adapted_lookup_layers_in_h5_are_exact(tmp_path, output_mode):
    import tensorflow as tf

    data = np.array(["a b c", "c d", "c a e"])
    vectorize = keras.layers.TextVectorization(output_mode=output_mode)
    vectorize.adapt(data)
    inputs = keras.Input((), dtype="string")
    model = keras.Model(inputs, vectorize(inputs))
    lookup = keras.layers.StringLookup()
    lookup.adapt(np.array(["a", "b", "c", "c"]))
    inputs2 = keras.Input((1,), dtype="string")
    model2 = keras.Model(inputs2, lookup(inputs2))
    for m, x in (
        (model, tf.constant(["a c d", "b zz"])),
        (model2, tf.constant([["a"], ["c"], ["zz"]])),
    ):
        serializable.save_model(m, tmp_path / "m.h5")
        restored = serializable.load_model(tmp_path / "m.h5")
        np.testing.assert_array_equal(
            restored.predict(x, verbose=0), m.predict(x, verbose=0)
        )


@register("never_worse")
class OffsetState(keras.layers.Layer):
    """Non-weight state through Keras's own save/load_own_variables hooks."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.offset = np.zeros((4,), "float32")

    def call(self, x):
        return x + self.offset

    def save_own_variables(self, store):
        store["offset"] = self.offset

    def load_own_variables(self, store):
        self.offset = np.asarray(store["offset"])


def test_own_variables_hooks_are_kept_in_h5(tmp_path, fmt):
    layer = OffsetState()
    model = _dense(layer)
    layer.offset = np.arange(4, dtype="float32") + 5
    serializable.save_model(model, tmp_path / f"m.{fmt}")
    restored = serializable.load_model(tmp_path / f"m.{fmt}")
    assert _max_diff(model, restored) == 0.0


def test_trained_nadam_in_h5_reloads_exactly(tmp_path):
    model = _dense()
    model.compile(keras.optimizers.Nadam(learning_rate=0.01), "mse")
    model.fit(X, Y, verbose=0, epochs=2)
    serializable.save_model(model, tmp_path / "m.h5")
    restored = serializable.load_model(tmp_path / "m.h5")
    for a, b in zip(
        model.optimizer.variables, restored.optimizer.variables, strict=True
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_unfilled_optimizers_are_keras_classes():
    from serializable import _h5

    for name in _h5.UNFILLED_OPTIMIZERS:
        assert isinstance(getattr(keras.optimizers, name), type), name
    assert "Nadam" not in _h5.UNFILLED_OPTIMIZERS


@register("never_worse")
def nw_loss(y_true, y_pred):
    return keras.ops.mean(keras.ops.square(y_true - y_pred))


@register("never_worse")
def nw_metric(y_true, y_pred):
    return keras.ops.mean(keras.ops.abs(y_true - y_pred))


def test_registered_loss_and_metric_functions_train_after_h5(tmp_path):
    model = _dense()
    model.compile("sgd", loss=nw_loss, metrics=[nw_metric])
    model.fit(X, Y, verbose=0)
    serializable.save_model(model, tmp_path / "m.h5")
    restored = serializable.load_model(tmp_path / "m.h5")
    np.testing.assert_allclose(
        restored.evaluate(X, Y, verbose=0), model.evaluate(X, Y, verbose=0)
    )
    restored.fit(X, Y, verbose=0)


def plain_loss(y_true, y_pred):  # not registered
    return keras.ops.mean(keras.ops.square(y_true - y_pred))


def test_custom_objects_loss_function_in_h5(tmp_path):
    model = _dense()
    model.compile("sgd", loss=plain_loss)
    serializable.save_model(model, tmp_path / "m.h5")
    restored = serializable.load_model(
        tmp_path / "m.h5", custom_objects={"plain_loss": plain_loss}
    )
    restored.fit(X, Y, verbose=0)
    with pytest.raises(MissingClassError, match="plain_loss"):
        serializable.load_model(tmp_path / "m.h5")


def test_unsafe_deserialization_enabled_is_honoured_for_h5(tmp_path, fmt):
    from keras.src.saving import serialization_lib

    model = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda t: t * 3)])
    path = tmp_path / f"m.{fmt}"
    serializable.save_model(model, path)
    with serialization_lib.SafeModeScope(None):  # restores the global flag
        keras.config.enable_unsafe_deserialization()
        restored = serializable.load_model(path)
    assert _max_diff(model, restored) == 0.0


@pytest.mark.skipif(
    keras.backend.backend() == "torch", reason="float16 training is slow on torch CPU"
)
def test_loss_scale_optimizer_kept_in_keras_format_in_float32_session(tmp_path):
    policy = keras.config.dtype_policy()
    try:
        keras.config.set_dtype_policy("mixed_float16")
        model = _dense()
        model.compile(keras.optimizers.Adam(0.01), "mse")
        model.fit(X, Y, verbose=0)
        serializable.save_model(model, tmp_path / "m.keras")
        keras.config.set_dtype_policy("float32")
        restored = serializable.load_model(tmp_path / "m.keras")
    finally:
        keras.config.set_dtype_policy(policy)
    assert isinstance(restored.optimizer, keras.optimizers.LossScaleOptimizer)
    for a, b in zip(
        model.optimizer.variables, restored.optimizer.variables, strict=True
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize(
    "loss",
    [keras.losses.Huber(delta=0.1), keras.losses.CosineSimilarity(axis=0)],
    ids=["Huber", "CosineSimilarity"],
)
def test_builtin_loss_settings_keras_drops_are_saved(tmp_path, fmt, loss):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    y = X[:, :3] * 5
    model.compile("sgd", loss, metrics=[keras.metrics.CosineSimilarity(axis=0)])
    model.fit(X, y, verbose=0)
    serializable.save_model(model, tmp_path / f"m.{fmt}")
    restored = serializable.load_model(tmp_path / f"m.{fmt}")
    np.testing.assert_allclose(
        restored.evaluate(X, y, verbose=0), model.evaluate(X, y, verbose=0), rtol=1e-6
    )


@register("never_worse")
class ForgetfulConfig(keras.layers.Layer):
    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def call(self, x):
        return x * self.units

    def get_config(self):
        return super().get_config()  # forgets `units`


def test_get_config_missing_a_required_argument_is_refused(tmp_path, fmt):
    from serializable._errors import UnserializableArgumentError

    model = keras.Sequential([keras.Input((4,)), ForgetfulConfig(3)])
    with pytest.raises(UnserializableArgumentError, match="units"):
        serializable.save_model(model, tmp_path / f"m.{fmt}")
    assert not (tmp_path / f"m.{fmt}").exists()


@register("never_worse")
class HandWrittenMLP(keras.Model):
    def __init__(self, units=8, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.hidden = keras.layers.Dense(units)
        self.out = keras.layers.Dense(1)

    def call(self, x):
        return self.out(self.hidden(x))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def test_subclassed_model_with_hand_written_config_reloads_from_h5(tmp_path, fmt):
    model = HandWrittenMLP()
    model.compile("adam", "mse")
    model.fit(X, Y, verbose=0)
    serializable.save_model(model, tmp_path / f"m.{fmt}")
    restored = serializable.load_model(tmp_path / f"m.{fmt}")
    assert _max_diff(model, restored) == 0.0


@register("never_worse")
class CustomStep(keras.Model):
    """keras.io style: train_step calls the sublayers, never the model."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = keras.layers.Dense(3)
        self.out = keras.layers.Dense(1)

    def call(self, x):
        return self.out(self.hidden(x))


def test_model_never_called_itself_is_refused_at_save(tmp_path, fmt):
    from serializable._errors import FormatLimitError

    model = CustomStep()
    model.out(model.hidden(X))  # the sublayers are built, the model is not
    assert model.weights and not model.built
    with pytest.raises(FormatLimitError, match="model.build"):
        serializable.save_model(model, tmp_path / f"m.{fmt}")
    assert not (tmp_path / f"m.{fmt}").exists()
    model(X[:1])  # the fix the message gives
    serializable.save_model(model, tmp_path / f"m.{fmt}")
    assert _max_diff(model, serializable.load_model(tmp_path / f"m.{fmt}")) == 0.0


@register("never_worse")
class TupleConfig(keras.layers.Layer):
    def __init__(self, size=(2, 3), **kwargs):
        super().__init__(**kwargs)
        self.size = tuple(size)

    def call(self, x):
        return x

    def get_config(self):
        return {**super().get_config(), "size": self.size}


def test_registering_keeps_a_hand_written_config_unchanged(tmp_path):
    import json
    import zipfile

    config = TupleConfig().get_config()
    assert config["size"] == (2, 3)
    model = keras.Sequential([keras.Input((4,)), TupleConfig()])
    serializable.save_model(model, tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        saved = json.loads(archive.read("config.json"))
    assert "__serializable__" not in json.dumps(saved)


def test_layer_shared_by_two_sub_models_is_refused_at_save(tmp_path):
    from serializable._errors import FormatLimitError

    shared = keras.layers.Dense(2)
    i1, i2, i = keras.Input((4,)), keras.Input((4,)), keras.Input((4,))
    a, b = keras.Model(i1, shared(i1)), keras.Model(i2, shared(i2))
    model = keras.Model(i, keras.layers.Add()([a(i), b(i)]))
    with pytest.raises(FormatLimitError, match="shared by"):
        serializable.save_model(model, tmp_path / "m.keras")


@pytest.mark.parametrize(
    "make",
    [lambda: keras.optimizers.Adafactor(0.05), lambda: keras.optimizers.Lamb(0.02)],
    ids=["Adafactor", "Lamb"],
)
def test_newer_optimizers_reload_exactly_from_h5(tmp_path, make):
    model = _dense(keras.layers.Dense(3))
    model.compile(make(), "mse")
    model.fit(X, Y, verbose=0, epochs=2)
    serializable.save_model(model, tmp_path / "m.h5")
    restored = serializable.load_model(tmp_path / "m.h5")
    assert type(restored.optimizer) is type(model.optimizer)
    for a, b in zip(
        model.optimizer.variables, restored.optimizer.variables, strict=True
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_keras_metric_functions_compile_from_h5(tmp_path):
    model = _dense()
    model.compile("sgd", "mse", metrics=[keras.metrics.huber, keras.metrics.log_cosh])
    model.fit(X, Y, verbose=0)
    serializable.save_model(model, tmp_path / "m.h5")
    restored = serializable.load_model(tmp_path / "m.h5")
    np.testing.assert_array_equal(
        restored.evaluate(X, Y, verbose=0), model.evaluate(X, Y, verbose=0)
    )


def test_config_the_h5_writer_cannot_store_is_refused(tmp_path):
    from serializable._errors import FormatLimitError

    model = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.RandomBrightness(0.2, seed=1)]
    )
    with pytest.raises(FormatLimitError, match="Save it as .keras instead"):
        serializable.save_model(model, tmp_path / "m.h5")
    assert not (tmp_path / "m.h5").exists()


@register("never_worse")
class OwnCompile(_OwnCompileBody, keras.Model):
    """A model whose class overrides compile() and compiles itself with
    defaults, as keras-hub's Task does: Keras's loader skips compiling it from
    the saved compile config."""


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_model_overriding_compile_resumes_training_exactly(tmp_path, fmt):
    model = OwnCompile()
    model.compile(
        optimizer=keras.optimizers.Adam(0.05), loss=keras.losses.MeanAbsoluteError()
    )
    model.train_on_batch(X, Y)
    path = serializable.save_model(model, tmp_path / f"m.{fmt}")
    restored = serializable.load_model(path)
    assert isinstance(restored, OwnCompile)
    # Compiled as saved (not with the class's defaults), its state restored.
    assert isinstance(restored.optimizer, keras.optimizers.Adam)
    assert float(restored.optimizer.learning_rate) == pytest.approx(0.05)
    assert int(restored.optimizer.iterations) == 1
    saved = [np.asarray(v) for v in model.optimizer.variables]
    loaded = [np.asarray(v) for v in restored.optimizer.variables]
    assert len(saved) == len(loaded) == 6
    for a, b in zip(saved, loaded, strict=True):
        np.testing.assert_array_equal(a, b)
    # The next training step is the one the saved model takes.
    expected = model.train_on_batch(X, Y)
    got = restored.train_on_batch(X, Y)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    for a, b in zip(model.get_weights(), restored.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_model_reusing_a_sub_models_inputs_saves(tmp_path, fmt):
    """The outer model built on its sub-model's own Input (keras-hub's task
    models on their backbone) shares only that weightless Input layer: not a
    shared layer that would lose weights."""
    i = keras.Input((4,))
    inner = keras.Model(i, keras.layers.Dense(3)(i))
    model = keras.Model(inner.input, keras.layers.Dense(1)(inner(inner.input)))
    path = serializable.save_model(model, tmp_path / f"m.{fmt}")
    assert _max_diff(model, serializable.load_model(path)) == 0.0


@register("never_worse")
class TwoOptimizers(keras.Model):
    """keras.io's GAN compile(): its own arguments, none of them Keras's."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(1)

    def call(self, x):
        return self.dense(x)

    def compile(self, d_optimizer, g_optimizer, loss_fn):
        super().compile()
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss_fn = loss_fn


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_model_whose_compile_takes_other_arguments_loads_uncompiled(tmp_path, fmt):
    """Its compile arguments are in no file: the model loads, uncompiled, with
    Keras's advice (the .h5 loader used to fail on compile(optimizer=...))."""
    model = TwoOptimizers()
    model(X)
    model.compile(d_optimizer=keras.optimizers.Adam(), g_optimizer="sgd", loss_fn="mse")
    path = serializable.save_model(model, tmp_path / f"m.{fmt}")
    with pytest.warns(UserWarning, match="was not compiled on load"):
        restored = serializable.load_model(path)
    assert not hasattr(restored, "optimizer")
    assert _max_diff(model, restored) == 0.0
