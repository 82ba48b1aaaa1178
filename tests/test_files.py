"""save_model/load_model: the legacy .h5 repairs, tuple outputs, missing classes."""

from __future__ import annotations

import importlib
import sys
import textwrap

import h5py
import keras
import numpy as np
import pytest

import serializable
from serializable import MissingClassError, SerializableLayer, SerializableModel


class Twin(SerializableModel, package="test_files"):
    """A registered subclassed model with nested layers (P6)."""

    def __init__(self, width=4, **kwargs):
        super().__init__(**kwargs)
        self.width = width
        self.hidden = keras.layers.Dense(width, activation="relu")
        self.out = keras.layers.Dense(2)

    def call(self, x):
        return self.out(self.hidden(x))


class SameNames(SerializableLayer, package="test_files"):
    """Two weights with the same name (P19): plain .h5 cannot even write it."""

    def build(self, shape):
        self.scale = self.add_weight(shape=(shape[-1],), initializer="ones", name="w")
        self.shift = self.add_weight(shape=(shape[-1],), initializer="zeros", name="w")

    def call(self, x):
        return x * self.scale + self.shift


class TwoParts(SerializableLayer, package="test_files"):
    """A layer whose sub-layer's trainable flag is flipped after build (P19)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.first = keras.layers.Dense(3, name="first")
        self.second = keras.layers.Dense(3, name="second")

    def call(self, x):
        return self.second(self.first(x))


@pytest.fixture
def data(rng):
    return rng.normal(size=(16, 3)).astype("float32"), rng.normal(size=(16, 2)).astype(
        "float32"
    )


def trained(model, data, loss="mse", metrics=("mae",)):
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2), loss=loss, metrics=list(metrics)
    )
    model.fit(*data, epochs=2, batch_size=4, verbose=0)
    return model


def sequential():
    return keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(2)]
    )


def assert_same_predictions(a, b, x):
    np.testing.assert_allclose(
        b.predict(x, verbose=0), a.predict(x, verbose=0), rtol=1e-6
    )


class TestLegacyRepairs:
    def test_p7_string_losses_from_plain_keras_file(self, tmp_path, data):
        """A plain-Keras .h5 compiled with loss="mse" fails in Keras, loads here (P7)."""
        model = trained(sequential(), data)
        path = tmp_path / "plain.h5"
        model.save(path)
        with pytest.raises(
            ValueError, match="Could not deserialize 'keras.metrics.mse'"
        ):
            keras.models.load_model(path)
        restored = serializable.load_model(path)
        assert restored.loss == "mse"
        before = model.evaluate(*data, verbose=0, return_dict=True)
        after = restored.evaluate(*data, verbose=0, return_dict=True)
        assert before.keys() == after.keys()
        for key in before:
            np.testing.assert_allclose(after[key], before[key], rtol=1e-5)

    @pytest.mark.parametrize("writer", ["plain_keras", "save_model"])
    def test_p15_training_resumes_exactly(self, tmp_path, data, writer):
        """Optimizer slots come back, so the next steps match the original's (P15)."""
        model = trained(sequential(), data)
        path = tmp_path / "model.h5"
        if writer == "plain_keras":
            model.save(path)
        else:
            serializable.save_model(model, path)
        restored = serializable.load_model(path)
        assert (
            int(restored.optimizer.iterations) == int(model.optimizer.iterations) == 8
        )
        for a, b in zip(
            model.optimizer.variables, restored.optimizer.variables, strict=True
        ):
            np.testing.assert_array_equal(
                keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)
            )
        model.fit(*data, epochs=1, batch_size=16, shuffle=False, verbose=0)
        restored.fit(*data, epochs=1, batch_size=16, shuffle=False, verbose=0)
        for a, b in zip(model.weights, restored.weights, strict=True):
            np.testing.assert_allclose(
                keras.ops.convert_to_numpy(b),
                keras.ops.convert_to_numpy(a),
                rtol=1e-6,
                atol=1e-7,
            )

    def test_p6_registered_model_loads_built_even_in_plain_keras(self, tmp_path, data):
        """A registered subclassed model in .h5 reloads built, by us and by plain Keras (P6)."""
        model = Twin(5, name="twin")
        model(data[0])
        path = tmp_path / "twin.h5"
        serializable.save_model(model, path, verify=True)
        with h5py.File(path) as handle:
            config = handle.attrs["model_config"]
            config = config.decode() if isinstance(config, bytes) else config
            assert '"class_name": "test_files>Twin"' in config
        for restored in (serializable.load_model(path), keras.models.load_model(path)):
            assert type(restored) is Twin and restored.built and restored.width == 5
            assert_same_predictions(model, restored, data[0])

    def test_p12_mask_op_layers(self, tmp_path, rng):
        """A mask from Embedding(mask_zero=True) in a Functional model loads (P12)."""
        ids = keras.Input((5,), dtype="int32")
        x = keras.layers.Embedding(10, 3, mask_zero=True)(ids)
        model = keras.Model(ids, keras.layers.LSTM(2)(x))
        path = tmp_path / "masked.h5"
        model.save(path)
        with pytest.raises(ValueError, match="Unknown layer: 'NotEqual'"):
            keras.models.load_model(path)
        batch = rng.integers(0, 10, size=(4, 5)).astype("int32")
        batch[:, -2:] = 0
        assert_same_predictions(model, serializable.load_model(path), batch)

    def test_p17_loss_scale_optimizer_survives(self, tmp_path, data):
        """A mixed_float16 model's LossScaleOptimizer is kept through .h5 (P17)."""
        keras.mixed_precision.set_global_policy("mixed_float16")
        try:
            model = keras.Sequential(
                [
                    keras.Input((3,)),
                    keras.layers.Dense(2),
                    keras.layers.Activation("linear", dtype="float32"),
                ]
            )
            model.compile(optimizer="adam", loss="mse")
            model.fit(*data, epochs=1, verbose=0)
        finally:
            keras.mixed_precision.set_global_policy("float32")
        path = tmp_path / "mixed.h5"
        serializable.save_model(model, path)
        restored = serializable.load_model(path)
        assert isinstance(restored.optimizer, keras.optimizers.LossScaleOptimizer)
        assert restored.layers[0].dtype_policy.name == "mixed_float16"

    def test_p19_duplicate_weight_names(self, tmp_path, data):
        """Two weights sharing a name: plain .h5 cannot write them, save_model can (P19)."""
        model = keras.Sequential([keras.Input((3,)), SameNames(name="same")])
        model.layers[0].shift.assign([1.0, 2.0, 3.0])
        with pytest.raises((ValueError, RuntimeError), match="name already exists"):
            model.save(tmp_path / "plain.h5")
        path = tmp_path / "same.h5"
        serializable.save_model(model, path, verify=True)
        layer = serializable.load_model(path).layers[0]
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(layer.shift), [1, 2, 3]
        )
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(layer.scale), [1, 1, 1]
        )

    def test_p19_trainable_flipped_after_build(self, tmp_path, data):
        """A sub-layer frozen after build: every weight lands in its own variable (P19)."""
        model = keras.Sequential([keras.Input((3,)), TwoParts(name="parts")])
        model.layers[0].first.trainable = False
        path = tmp_path / "parts.h5"
        serializable.save_model(model, path, verify=True)
        restored = serializable.load_model(path)
        for a, b in zip(model.weights, restored.weights, strict=True):
            np.testing.assert_array_equal(
                keras.ops.convert_to_numpy(b), keras.ops.convert_to_numpy(a)
            )

    def test_shared_variable_refused_for_h5(self, tmp_path):
        """Variables shared between layers are refused before writing, suggesting .keras."""
        inputs = keras.Input((3,))
        dense = keras.layers.Dense(3, name="dense")
        model = keras.Model(inputs, dense(dense(inputs)))
        inner_in = keras.Input((3,))
        inner = keras.Model(inner_in, dense(inner_in), name="inner")
        outer_in = keras.Input((3,))
        both = keras.Model(outer_in, dense(inner(outer_in)))
        serializable.save_model(model, tmp_path / "ok.h5")  # reuse of a layer is fine
        with pytest.raises(serializable.FormatLimitError) as info:
            serializable.save_model(both, tmp_path / "shared.h5")
        assert "Save it as .keras instead" in str(info.value)
        assert not (tmp_path / "shared.h5").exists()


@keras.saving.register_keras_serializable(package="test_files")
class CountingOnes(keras.initializers.Initializer):
    """Ones, counting the calls that compute a value (not graph tracing)."""

    eager_calls = 0

    def __call__(self, shape, dtype=None):
        if keras.backend.backend() != "tensorflow":
            type(self).eager_calls += 1
        else:
            import tensorflow as tf

            type(self).eager_calls += int(tf.executing_eagerly())
        return keras.ops.ones(shape, dtype=dtype)


class ArrayOffset(SerializableLayer, package="test_files"):
    """A variable made from an array in build: it cannot exist without a value."""

    def build(self, shape):
        self.offset = keras.Variable(
            np.arange(shape[-1], dtype="float32"), name="offset"
        )

    def call(self, x):
        return x + self.offset


@keras.saving.register_keras_serializable(package="test_files")
class HomeMadeAdam(keras.optimizers.Adam):
    """An optimizer from outside Keras: its build is not known to be safe to defer."""


def uninitialized_leftovers():
    """Keras's per-thread list of variables created without a value."""
    from keras.src.backend.common import global_state

    return global_state.get_global_attribute("uninitialized_variables") or []


def numpy_weights(variables):
    return [keras.ops.convert_to_numpy(v) for v in variables]


class TestVariablesComeFromTheFile:
    """Loading creates variables from the saved arrays (no initializer runs for
    them) and initializes the rest as an ordinary build would: `.h5` always,
    `.keras` when no optimizer is restored."""

    @pytest.mark.skipif(
        keras.backend.backend() != "tensorflow",
        reason="variables are created from the file on TensorFlow only",
    )
    def test_saved_weights_are_not_computed_first(self, tmp_path, data, fmt):
        """No initializer computes a value the file then overwrites."""
        model = keras.Sequential(
            [
                keras.Input((3,)),
                keras.layers.Dense(4, kernel_initializer=CountingOnes()),
                keras.layers.Dense(2),
            ]
        )
        model.layers[0].kernel.assign(np.full((3, 4), 0.5, dtype="float32"))
        path = tmp_path / f"model.{fmt}"
        serializable.save_model(model, path)
        CountingOnes.eager_calls = 0
        restored = serializable.load_model(path)
        assert CountingOnes.eager_calls == 0
        for a, b in zip(model.weights, restored.weights, strict=True):
            np.testing.assert_array_equal(
                keras.ops.convert_to_numpy(b), keras.ops.convert_to_numpy(a)
            )
        assert_same_predictions(model, restored, data[0])
        assert uninitialized_leftovers() == []

    def test_variables_the_file_does_not_hold_are_initialized(
        self, tmp_path, data, fmt
    ):
        """A seed generator's state is no weight: it gets its own initializer."""
        model = keras.Sequential(
            [
                keras.Input((3,)),
                keras.layers.Dense(4),
                keras.layers.Dropout(0.5, seed=3),
                keras.layers.Dense(2),
            ]
        )
        path = tmp_path / f"model.{fmt}"
        serializable.save_model(model, path)
        restored = serializable.load_model(path)
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(restored.layers[1].seed_generator.state),
            keras.ops.convert_to_numpy(model.layers[1].seed_generator.state),
        )
        assert_same_predictions(model, restored, data[0])
        restored(data[0], training=True)  # the dropout draws from its seed
        assert uninitialized_leftovers() == []

    def test_layer_that_needs_a_value_while_built(self, tmp_path, data, fmt):
        """A layer that makes a variable from an array is built the ordinary way."""
        model = keras.Sequential([keras.Input((3,)), ArrayOffset(name="offset")])
        model.layers[0].offset.assign([5.0, 6.0, 7.0])
        path = tmp_path / f"model.{fmt}"
        serializable.save_model(model, path, verify=True)
        restored = serializable.load_model(path)
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(restored.layers[0].offset), [5, 6, 7]
        )
        assert uninitialized_leftovers() == []

    @pytest.mark.parametrize("optimizer", ["adam", "mixed_float16", "home_made"])
    def test_optimizer_slots_are_the_saved_ones(self, tmp_path, data, optimizer):
        """Slots of Keras's optimizers, a wrapped one and one from elsewhere."""
        if optimizer == "mixed_float16":
            keras.mixed_precision.set_global_policy("mixed_float16")
        try:
            model = keras.Sequential(
                [
                    keras.Input((3,)),
                    keras.layers.Dense(4),
                    keras.layers.Dense(2, dtype="float32"),
                ]
            )
            chosen = HomeMadeAdam() if optimizer == "home_made" else "adam"
            model.compile(optimizer=chosen, loss="mse")
            model.fit(*data, epochs=1, batch_size=8, verbose=0)
        finally:
            keras.mixed_precision.set_global_policy("float32")
        path = tmp_path / "model.h5"
        serializable.save_model(model, path)
        restored = serializable.load_model(path)
        assert type(restored.optimizer) is type(model.optimizer)
        saved = numpy_weights(model.optimizer.variables)
        loaded = numpy_weights(restored.optimizer.variables)
        assert len(saved) == len(loaded) > 2
        for a, b in zip(saved, loaded, strict=True):
            np.testing.assert_array_equal(b, a)
        assert uninitialized_leftovers() == []

    @pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.distribute")
    def test_loaded_inside_a_distribution_strategy(self, tmp_path, data):
        """Inside a strategy's scope the variables made from the file are its own."""
        import tensorflow as tf

        model = trained(sequential(), data)
        path = tmp_path / "model.h5"
        serializable.save_model(model, path)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
        with strategy.scope():
            restored = serializable.load_model(path)
        for variable in [*restored.weights, *restored.optimizer.variables]:
            assert strategy.extended.variable_created_in_scope(variable.value)
        for a, b in zip(
            numpy_weights([*model.weights, *model.optimizer.variables]),
            numpy_weights([*restored.weights, *restored.optimizer.variables]),
            strict=True,
        ):
            np.testing.assert_array_equal(b, a)
        assert uninitialized_leftovers() == []


class TestCompiledButUntrained:
    @pytest.mark.parametrize("writer", ["plain_keras", "save_model"])
    def test_no_spurious_optimizer_warning(self, tmp_path, writer):
        """A compiled model saved before any step loads without an optimizer warning."""
        model = sequential()
        model.compile(optimizer="adam", loss="mse")
        path = tmp_path / "fresh.h5"
        model.save(path) if writer == "plain_keras" else serializable.save_model(
            model, path
        )
        restored = serializable.load_model(path)  # filterwarnings=error: no warning
        assert int(restored.optimizer.iterations) == 0


class TestTupleOutputs:
    def test_tuple_outputs_stay_tuples(self, tmp_path, fmt, rng):
        """A model returning a tuple returns a tuple after reload (P4)."""
        inputs = keras.Input((3,))
        model = keras.Model(
            inputs, (keras.layers.Dense(1)(inputs), keras.layers.Dense(2)(inputs))
        )
        path = tmp_path / f"tuple.{fmt}"
        serializable.save_model(model, path)
        x = rng.normal(size=(2, 3)).astype("float32")
        out = serializable.load_model(path)(x)
        assert isinstance(out, tuple) and len(out) == 2
        assert isinstance(keras.models.load_model(path)(x), list)  # plain Keras


class TestCompiledRoundTrip:
    def test_compiled_model_passes_assert_roundtrip_via_save_model(
        self, tmp_path, fmt, data
    ):
        """A compiled, trained model saved and loaded by us matches in both formats."""
        model = trained(sequential(), data, loss=keras.losses.Huber(delta=0.5))
        path = tmp_path / f"model.{fmt}"
        serializable.save_model(model, path, verify=True)
        restored = serializable.load_model(path)
        assert isinstance(restored.loss, keras.losses.Huber)
        assert int(restored.optimizer.iterations) == 8
        assert_same_predictions(model, restored, data[0])


MODULE = """
import keras
import serializable

class Ghostly(serializable.SerializableLayer, package="vanishing"):
    def call(self, x):
        return x * 2.0

@serializable.register_keras_serializable(package="vanishing")
def spooky(x):
    return x + 1.0
"""


class TestMissingClasses:
    @pytest.mark.parametrize("suffix", ["keras", "h5"])
    def test_every_missing_class_is_listed_with_its_module(
        self, tmp_path, monkeypatch, suffix
    ):
        """All missing classes are named at once, with the module to import."""
        (tmp_path / "vanishing_layers.py").write_text(textwrap.dedent(MODULE))
        monkeypatch.syspath_prepend(str(tmp_path))
        module = importlib.import_module("vanishing_layers")
        model = keras.Sequential(
            [
                keras.Input((2,)),
                module.Ghostly(),
                keras.layers.Activation(module.spooky),
            ]
        )
        path = tmp_path / f"ghost.{suffix}"
        serializable.save_model(model, path)
        objects = keras.saving.get_custom_objects()
        saved = {k: objects.pop(k) for k in ("vanishing>Ghostly", "vanishing>spooky")}
        try:
            with pytest.raises(MissingClassError) as info:
                serializable.load_model(path)
        finally:
            objects.update(saved)
            sys.modules.pop("vanishing_layers", None)
        message = str(info.value)
        assert (
            "expected every custom class and function it needs to be registered"
            in message
        )
        assert "Received: 2 that are not:" in message
        assert "'vanishing>Ghostly' (Ghostly from module vanishing_layers)" in message
        assert "'vanishing>spooky'" in message
        assert "claims they come from module(s) vanishing_layers" in message
        assert "import only a trusted file's modules" in message
        assert [ref.registered_name for ref in info.value.missing] == [
            "vanishing>Ghostly",
            "vanishing>spooky",
        ]
