"""Each pitfall from docs/pitfalls.md: plain Keras gets it wrong, the library fixes it.

`TestP<n>` is section n of docs/pitfalls.md (P1 is its first section).

Every `TestP<n>` group pairs a test that shows plain Keras failing (so we notice
if Keras ever fixes it) with a test that the same code round-trips in both
formats once registered with keras-serializable.

Classes live at module level with unique registered names: plain-Keras ones
under the package "pitfalls_keras", library ones under "pitfalls". Registering
two different classes under one name is an error in the library (P14), and
parametrized tests run their body once per format.

Where the plain-Keras class and the library class would have the same body,
the body is written once, in a private mixin (`_P2WrapperBody`, ...) that
subclasses no Keras class; the two registered classes only add their base
class and their registration, so they cannot drift apart.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
from keras.src.models.functional import Functional

import serializable

KERAS = "pitfalls_keras"
LIB = "pitfalls"


def _wrap(layer: keras.layers.Layer, shape: tuple[int, ...]) -> keras.Model:
    inputs = keras.Input(shape)
    return keras.Model(inputs, layer(inputs))


def _save(model: keras.Model, tmp_path: Path, fmt: str) -> Path:
    path = tmp_path / f"model.{fmt}"
    model.save(path)
    return path


def _inputs(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.normal(size=shape).astype("float32")


@contextlib.contextmanager
def _global_dtype_policy(name: str) -> Iterator[None]:
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


# ---------------------------------------------------------------------------
# P1: non-JSON constructor arguments, *args and positional-only arguments
# ---------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package=KERAS)
class KerasP1Holder(keras.layers.Layer):
    def __init__(self, value, **kwargs):
        super().__init__(**kwargs)
        self.value = value

    def build(self, input_shape):
        if isinstance(self.value, keras.layers.Layer):
            self.value.build(input_shape)

    def call(self, x):
        return x


@keras.saving.register_keras_serializable(package=KERAS)
class KerasP1VarArgs(keras.layers.Layer):
    def __init__(self, *factors, **kwargs):
        super().__init__(**kwargs)
        self.factors = factors

    def call(self, x):
        return x


@keras.saving.register_keras_serializable(package=KERAS)
class KerasP1PositionalOnly(keras.layers.Layer):
    def __init__(self, factor, /, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return x * self.factor


@serializable.register_keras_serializable(package=LIB)
class P1Mixer(keras.layers.Layer):
    def __init__(self, inner, kernel_initializer, activation, offsets, count, **kwargs):
        super().__init__(**kwargs)
        self.inner = inner
        self.kernel_initializer = kernel_initializer
        self.activation = activation
        self.offsets = offsets
        self.count = count

    def build(self, input_shape):
        self.inner.build(input_shape)
        self.scale = self.add_weight(
            shape=(input_shape[-1],), initializer=self.kernel_initializer, name="scale"
        )

    def call(self, x):
        y = self.activation(x * self.scale + self.offsets) * float(self.count)
        return self.inner(y)


class P1Product(serializable.SerializableLayer, package=LIB):
    def __init__(self, units, /, *factors, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.factors = factors
        self.dense = keras.layers.Dense(units)

    def build(self, input_shape):
        self.dense.build(input_shape)

    def call(self, x):
        y = self.dense(x)
        for factor in self.factors:
            y = y * factor
        return y


class TestP1:
    @pytest.mark.parametrize(
        "make_value",
        [
            pytest.param(lambda: keras.layers.Dense(2), id="layer"),
            pytest.param(lambda: keras.initializers.HeNormal(seed=1), id="initializer"),
            pytest.param(lambda: keras.activations.relu, id="activation"),
            pytest.param(lambda: np.arange(3.0), id="ndarray"),
            pytest.param(lambda: np.int64(3), id="int64"),
        ],
    )
    def test_plain_keras_refuses_non_json_arguments_at_save(
        self, fmt, tmp_path, make_value
    ):
        """Plain Keras refuses a layer, initializer, function or numpy argument."""
        model = _wrap(KerasP1Holder(make_value()), (3,))
        with pytest.raises(NotImplementedError, match="non-serializable argument"):
            _save(model, tmp_path, fmt)

    @pytest.mark.parametrize(
        "make_layer",
        [
            pytest.param(lambda: KerasP1VarArgs(2.0, 0.5), id="varargs"),
            pytest.param(lambda: KerasP1PositionalOnly(2.0), id="positional-only"),
        ],
    )
    def test_plain_keras_refuses_varargs_and_positional_only_at_save(
        self, fmt, tmp_path, make_layer
    ):
        """Plain Keras auto-config refuses `*args` and positional-only arguments."""
        model = _wrap(make_layer(), (3,))
        with pytest.raises(NotImplementedError, match="positional only or variadic"):
            _save(model, tmp_path, fmt)

    def test_library_round_trips_non_json_arguments(
        self, reload, assert_same_weights, rng
    ):
        """A layer, initializer, activation, array and np.int64 come back as such."""
        layer = P1Mixer(
            keras.layers.Dense(2),
            keras.initializers.HeNormal(seed=1),
            keras.activations.relu,
            np.arange(3.0, dtype="float32"),
            np.int64(3),
        )
        model = _wrap(layer, (3,))
        x = _inputs(rng, 4, 3)

        reloaded = reload(model)
        got = reloaded.layers[1]

        assert type(got) is P1Mixer
        assert isinstance(got.inner, keras.layers.Dense)
        assert got.inner.units == 2
        assert isinstance(got.kernel_initializer, keras.initializers.HeNormal)
        assert got.kernel_initializer.seed == 1
        assert got.activation is keras.activations.relu
        assert type(got.offsets) is np.ndarray
        assert got.offsets.dtype == np.float32
        np.testing.assert_array_equal(got.offsets, [0.0, 1.0, 2.0])
        assert type(got.count) is np.int64
        assert got.count == 3
        assert_same_weights(model, reloaded)
        np.testing.assert_allclose(
            reloaded.predict(x, verbose=0), model.predict(x, verbose=0)
        )

    def test_library_round_trips_varargs_and_positional_only(
        self, reload, assert_same_weights, rng
    ):
        """Positional-only and `*args` arguments are passed back the way they came."""
        model = _wrap(P1Product(3, 2.0, 0.5), (4,))
        x = _inputs(rng, 2, 4)

        reloaded = reload(model)
        got = reloaded.layers[1]

        assert got.units == 3
        assert type(got.factors) is tuple
        assert got.factors == (2.0, 0.5)
        assert_same_weights(model, reloaded)
        np.testing.assert_allclose(
            reloaded.predict(x, verbose=0), model.predict(x, verbose=0)
        )


# ---------------------------------------------------------------------------
# P2: a hand-written get_config that returns the nested objects themselves
# ---------------------------------------------------------------------------


# One body each, registered twice: with plain Keras to show the nested object
# lost, with the library to show it deserialized.


class _P2WrapperBody:
    def __init__(self, inner, **kwargs):
        super().__init__(**kwargs)
        self.inner = inner

    def build(self, input_shape):
        self.inner.build(input_shape)

    def call(self, x):
        return self.inner(x)

    def get_config(self):
        return {**super().get_config(), "inner": self.inner}


class _P2ScaleBody:
    def __init__(self, initializer, **kwargs):
        super().__init__(**kwargs)
        self.initializer = initializer

    def build(self, input_shape):
        self.w = self.add_weight(
            shape=(input_shape[-1],), initializer=self.initializer, name="w"
        )

    def call(self, x):
        return x * self.w

    def get_config(self):
        return {**super().get_config(), "initializer": self.initializer}


@keras.saving.register_keras_serializable(package=KERAS)
class KerasP2Wrapper(_P2WrapperBody, keras.layers.Layer):
    pass


@keras.saving.register_keras_serializable(package=KERAS)
class KerasP2Scale(_P2ScaleBody, keras.layers.Layer):
    pass


@serializable.register_keras_serializable(package=LIB)
class P2Wrapper(_P2WrapperBody, keras.layers.Layer):
    pass


@serializable.register_keras_serializable(package=LIB)
class P2Scale(_P2ScaleBody, keras.layers.Layer):
    pass


class TestP2:
    def test_plain_keras_passes_nested_layer_config_to_init(self, fmt, tmp_path, rng):
        """Plain Keras passes `__init__` the nested layer's dict in `.keras`."""
        model = _wrap(KerasP2Wrapper(keras.layers.Dense(2)), (3,))
        path = _save(model, tmp_path, fmt)
        if fmt == "keras":
            with pytest.raises(AttributeError, match="'TrackedDict' object has no"):
                keras.models.load_model(path)
        else:
            x = _inputs(rng, 4, 3)
            reloaded = keras.models.load_model(path)
            np.testing.assert_allclose(
                reloaded.predict(x, verbose=0), model.predict(x, verbose=0)
            )

    def test_plain_keras_loses_nested_initializer(self, fmt, tmp_path):
        """Plain Keras keeps a nested initializer as a dict in `.keras`; `.h5` fails."""
        model = _wrap(KerasP2Scale(keras.initializers.HeNormal(seed=1)), (3,))
        path = _save(model, tmp_path, fmt)
        if fmt == "keras":
            # add_weight happens to accept a config dict, so the model loads,
            # but the attribute is no longer an initializer.
            got = keras.models.load_model(path).layers[1]
            assert not isinstance(got.initializer, keras.initializers.Initializer)
            assert got.initializer["class_name"] == "HeNormal"
        else:
            with pytest.raises(ValueError, match="Unknown config_item: 'HeNormal'"):
                keras.models.load_model(path)

    def test_library_deserializes_nested_layer(self, reload, assert_same_weights, rng):
        """A hand-written config holding a layer reloads with a real, built layer."""
        model = _wrap(P2Wrapper(keras.layers.Dense(2)), (3,))
        x = _inputs(rng, 4, 3)

        reloaded = reload(model)
        got = reloaded.layers[1]

        assert isinstance(got.inner, keras.layers.Dense)
        assert got.inner.built
        assert_same_weights(model, reloaded)
        np.testing.assert_allclose(
            reloaded.predict(x, verbose=0), model.predict(x, verbose=0)
        )

    def test_library_deserializes_nested_initializer(
        self, fmt, reload, assert_same_weights
    ):
        """A hand-written config holding an initializer reloads with an initializer."""
        model = _wrap(P2Scale(keras.initializers.HeNormal(seed=1)), (3,))

        reloaded = reload(model)
        got = reloaded.layers[1]

        assert isinstance(got.initializer, keras.initializers.HeNormal)
        assert got.initializer.seed == 1
        assert_same_weights(model, reloaded)


# ---------------------------------------------------------------------------
# P3: the child is built in the parent's build(), but deserialization built it
# ---------------------------------------------------------------------------


# One block, in three layers of the Keras guide's recipe, so that plain Keras
# (full recipe) and the library (full recipe, get_config only, nothing) run
# the same build() that builds the child.


class _P3BlockBody:
    """A child layer plus a bias, the child built in the parent's build()."""

    def __init__(self, inner, **kwargs):
        super().__init__(**kwargs)
        self.inner = inner

    def build(self, input_shape):
        self.inner.build(input_shape)
        self.bias = self.add_weight(
            shape=(self.inner.units,), initializer="ones", name="bias"
        )

    def call(self, x):
        return self.inner(x) + self.bias


class _P3GetConfigBody(_P3BlockBody):
    """The get_config half of the Keras guide's recipe for a nested layer."""

    def get_config(self):
        inner = keras.saving.serialize_keras_object(self.inner)
        return {**super().get_config(), "inner": inner}


class _P3GuideBody(_P3GetConfigBody):
    """The Keras guide's full recipe: get_config and from_config."""

    @classmethod
    def from_config(cls, config):
        config["inner"] = keras.saving.deserialize_keras_object(config["inner"])
        return cls(**config)


@keras.saving.register_keras_serializable(package=KERAS)
class KerasP3Block(_P3GuideBody, keras.layers.Layer):
    """The Keras guide's recipe for a nested layer, plus building it in build()."""


@serializable.register_keras_serializable(package=LIB)
class P3GuideBlock(_P3GuideBody, keras.layers.Layer):
    """The Keras guide's recipe (get_config and from_config), registered by us."""


@serializable.register_keras_serializable(package=LIB)
class P3GetConfigBlock(_P3GetConfigBody, keras.layers.Layer):
    """Only the get_config half of the guide's recipe; from_config is ours."""


class P3Block(_P3BlockBody, serializable.SerializableLayer, package=LIB):
    """No get_config at all: the generated config holds the child."""


class TestP3:
    def test_plain_keras_builds_the_deserialized_child_twice(self, fmt, tmp_path):
        """Plain Keras fails to load when build() builds an already-built child."""
        model = _wrap(KerasP3Block(keras.layers.Dense(2)), (3,))
        path = _save(model, tmp_path, fmt)
        with pytest.raises(ValueError, match="You cannot add new elements of state"):
            keras.models.load_model(path)

    @pytest.mark.parametrize("block", [P3Block, P3GetConfigBlock])
    def test_library_child_built_in_build_reloads(
        self, reload, assert_same_weights, rng, block
    ):
        """A child built in the parent's build() reloads with the same weights."""
        model = _wrap(block(keras.layers.Dense(2)), (3,))
        x = _inputs(rng, 4, 3)

        reloaded = reload(model)

        assert type(reloaded.layers[1]) is block
        assert_same_weights(model, reloaded)
        np.testing.assert_allclose(
            reloaded.predict(x, verbose=0), model.predict(x, verbose=0)
        )

    def test_library_guide_recipe_reloads(self, reload, assert_same_weights, rng):
        """The full Keras guide recipe, registered with the library, reloads."""
        model = _wrap(P3GuideBlock(keras.layers.Dense(2)), (3,))
        x = _inputs(rng, 4, 3)

        reloaded = reload(model)

        assert_same_weights(model, reloaded)
        np.testing.assert_allclose(
            reloaded.predict(x, verbose=0), model.predict(x, verbose=0)
        )


# ---------------------------------------------------------------------------
# P4: tuple arguments come back as lists
# ---------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package=KERAS)
class KerasP4Reshape(keras.layers.Layer):
    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = target_shape

    def call(self, x):
        return keras.ops.reshape(x, (-1,) + self.target_shape)


@serializable.register_keras_serializable(package=LIB)
class P4Reshape(keras.layers.Layer):
    def __init__(self, target_shape, pairs, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = target_shape
        self.pairs = pairs

    def call(self, x):
        return keras.ops.reshape(x, (-1,) + self.target_shape)


class TestP4:
    def test_plain_keras_turns_tuple_argument_into_list(self, fmt, tmp_path):
        """Plain Keras reloads a tuple argument as a list, so `(-1,) + shape` fails."""
        model = _wrap(KerasP4Reshape((2, 3)), (6,))
        path = _save(model, tmp_path, fmt)
        with pytest.raises(TypeError, match="can only concatenate tuple"):
            keras.models.load_model(path)

    def test_library_keeps_tuple_arguments(self, reload, rng):
        """Tuples, also nested in a list, come back as tuples."""
        model = _wrap(P4Reshape((2, 3), [(0, 1), (2, 3)]), (6,))
        x = _inputs(rng, 4, 6)

        reloaded = reload(model)
        got = reloaded.layers[1]

        assert type(got.target_shape) is tuple
        assert got.target_shape == (2, 3)
        assert [type(pair) for pair in got.pairs] == [tuple, tuple]
        assert list(got.pairs) == [(0, 1), (2, 3)]
        np.testing.assert_allclose(
            reloaded.predict(x, verbose=0), model.predict(x, verbose=0)
        )


# ---------------------------------------------------------------------------
# P5: numpy values in a config
# ---------------------------------------------------------------------------


# One body: plain Keras needs the get_config below and still fails; the
# library reloads the same layer with no get_config at all.


class _P5AffineBody:
    def __init__(self, table, shift, **kwargs):
        super().__init__(**kwargs)
        self.table = table.reshape(2, 3)
        self.shift = shift

    def call(self, x):
        return keras.ops.matmul(x, self.table) + float(self.shift)


@keras.saving.register_keras_serializable(package=KERAS)
class KerasP5Affine(_P5AffineBody, keras.layers.Layer):
    def get_config(self):
        return {**super().get_config(), "table": self.table, "shift": self.shift}


@serializable.register_keras_serializable(package=LIB)
class P5Affine(_P5AffineBody, keras.layers.Layer):
    """No get_config: the generated config encodes the numpy values."""


@serializable.register_keras_serializable(package=LIB)
class P5HandWrittenAffine(keras.layers.Layer):
    """A hand-written get_config that returns a numpy array, as in the pitfall."""

    def __init__(self, table, **kwargs):
        super().__init__(**kwargs)
        self.table = table.reshape(2, 3)

    def call(self, x):
        return keras.ops.matmul(x, self.table)

    def get_config(self):
        return {**super().get_config(), "table": self.table}


class TestP5:
    def test_plain_keras_passes_no_array_to_init(self, fmt, tmp_path):
        """Plain Keras passes `__init__` a `__numpy__` dict or a list, not an array."""
        table = np.arange(6, dtype="float32")
        model = _wrap(KerasP5Affine(table, np.int64(2)), (2,))
        path = _save(model, tmp_path, fmt)
        received = {"keras": "dict", "h5": "list"}[fmt]
        with pytest.raises(TypeError, match=f"'{received}' object has no attribute"):
            keras.models.load_model(path)

    def test_library_keeps_numpy_values(self, reload, rng):
        """An array keeps its dtype and shape, and an np.int64 stays an np.int64."""
        table = np.arange(6, dtype="float32")
        model = _wrap(P5Affine(table, np.int64(2)), (2,))
        x = _inputs(rng, 4, 2)

        reloaded = reload(model)
        got = reloaded.layers[1]

        assert type(got.table) is np.ndarray
        assert got.table.dtype == np.float32
        np.testing.assert_array_equal(got.table, table.reshape(2, 3))
        assert type(got.shift) is np.int64
        assert got.shift == 2
        np.testing.assert_allclose(
            reloaded.predict(x, verbose=0), model.predict(x, verbose=0)
        )

    def test_library_keeps_array_from_hand_written_config(self, fmt, reload, rng):
        """A numpy array returned by a hand-written get_config reloads as an array."""
        table = np.arange(6, dtype="float32")
        model = _wrap(P5HandWrittenAffine(table), (2,))
        x = _inputs(rng, 4, 2)

        reloaded = reload(model)
        got = reloaded.layers[1]

        assert type(got.table) is np.ndarray
        np.testing.assert_array_equal(got.table, table.reshape(2, 3))
        np.testing.assert_allclose(
            reloaded.predict(x, verbose=0), model.predict(x, verbose=0)
        )


# ---------------------------------------------------------------------------
# P6: registered Model subclasses and .h5
# ---------------------------------------------------------------------------

# Bare class names must differ between the plain and the library classes: the
# library aliases a registered model's bare name for `.h5`, which would
# otherwise let the plain-Keras load find the library class.


# One body each, registered with plain Keras to show `.h5` failing and with
# the library to show it reload (P22MLP reuses the MLP body too). The bodies
# subclass no Keras class, so Keras making a Functional subclass's own chain
# Functional never reaches the other classes that share the body.


class _MLPBody:
    def __init__(self, hidden=4, **kwargs):
        super().__init__(**kwargs)
        self.hidden_layer = keras.layers.Dense(hidden, activation="relu")
        self.head = keras.layers.Dense(1)

    def call(self, x):
        return self.head(self.hidden_layer(x))


class _P6NetBody:
    def __init__(self, **kwargs):
        inputs = keras.Input((3,))
        outputs = keras.layers.Dense(2)(inputs)
        super().__init__(inputs, outputs, **kwargs)


@keras.saving.register_keras_serializable(package=KERAS)
class KerasP6MLP(_MLPBody, keras.Model):
    pass


@keras.saving.register_keras_serializable(package=KERAS)
class KerasP6Net(_P6NetBody, keras.Model):
    pass


@serializable.register_keras_serializable(package=LIB)
class P6MLP(_MLPBody, keras.Model):
    pass


@serializable.register_keras_serializable(package=LIB)
class P6Net(_P6NetBody, keras.Model):
    pass


class TestP6:
    def test_plain_keras_subclassed_model_fails_in_h5(self, fmt, tmp_path, rng):
        """Plain Keras reloads a subclassed model from `.keras` but not from `.h5`."""
        model = KerasP6MLP()  # default arguments: P22 is a separate pitfall
        x = _inputs(rng, 4, 3)
        expected = model.predict(x, verbose=0)
        path = _save(model, tmp_path, fmt)
        if fmt == "keras":
            reloaded = keras.models.load_model(path)
            np.testing.assert_allclose(reloaded.predict(x, verbose=0), expected)
        else:
            with pytest.raises(ValueError, match="Unknown layer: 'KerasP6MLP'"):
                keras.models.load_model(path)
            with pytest.raises(ValueError, match="Model expected 0 layers, found 2"):
                keras.models.load_model(path, custom_objects={"KerasP6MLP": KerasP6MLP})

    def test_plain_keras_functional_subclass_fails_in_h5(self, fmt, tmp_path, rng):
        """Plain Keras finds a registered Functional subclass in `.keras` only."""
        model = KerasP6Net()
        x = _inputs(rng, 4, 3)
        path = _save(model, tmp_path, fmt)
        if fmt == "keras":
            reloaded = keras.models.load_model(path)
            assert type(reloaded) is KerasP6Net
            np.testing.assert_allclose(
                reloaded.predict(x, verbose=0), model.predict(x, verbose=0)
            )
        else:
            with pytest.raises(ValueError, match="Unknown layer: 'KerasP6Net'"):
                keras.models.load_model(path)

    def test_library_subclassed_model_reloads(self, reload, assert_same_weights, rng):
        """A registered subclassed model reloads built, with weights and predictions."""
        model = P6MLP(hidden=5)
        x = _inputs(rng, 4, 3)
        expected = model.predict(x, verbose=0)

        reloaded = reload(model)

        assert type(reloaded) is P6MLP
        assert reloaded.built
        assert reloaded.hidden_layer.units == 5
        assert_same_weights(model, reloaded)
        np.testing.assert_allclose(reloaded.predict(x, verbose=0), expected)

    def test_library_functional_subclass_reloads(
        self, reload, assert_same_weights, rng
    ):
        """A registered Functional subclass reloads as itself with the same weights."""
        model = P6Net()
        x = _inputs(rng, 4, 3)

        reloaded = reload(model)

        assert type(reloaded) is P6Net
        assert reloaded.built
        assert_same_weights(model, reloaded)
        np.testing.assert_allclose(
            reloaded.predict(x, verbose=0), model.predict(x, verbose=0)
        )


# ---------------------------------------------------------------------------
# P9: custom losses, metrics and learning-rate schedules with parameters
# ---------------------------------------------------------------------------


# One body each, on a plain Keras base to show the parameters lost and on the
# library's base to show them kept.


class _P9PowerLossBody:
    def __init__(self, power=3, **kwargs):
        super().__init__(**kwargs)
        self.power = power

    def call(self, y_true, y_pred):
        return keras.ops.mean(keras.ops.abs(y_true - y_pred) ** self.power, axis=-1)


class _P9AboveThresholdBody:
    def __init__(self, threshold=0.1, **kwargs):
        super().__init__(**kwargs)
        self.threshold = threshold
        self.count = self.add_variable((), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        hits = keras.ops.cast(y_pred > self.threshold, "float32")
        self.count.assign_add(keras.ops.sum(hits))

    def result(self):
        return keras.ops.convert_to_tensor(self.count)


class _P9WarmupBody:
    def __init__(self, peak=1e-3, steps=100):
        self.peak = peak
        self.steps = steps

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        return self.peak * keras.ops.minimum(1.0, step / self.steps)


@keras.saving.register_keras_serializable(package=KERAS)
class KerasP9PowerLoss(_P9PowerLossBody, keras.losses.Loss):
    pass


@keras.saving.register_keras_serializable(package=KERAS)
class KerasP9AboveThreshold(_P9AboveThresholdBody, keras.metrics.Metric):
    pass


@keras.saving.register_keras_serializable(package=KERAS)
class KerasP9Warmup(_P9WarmupBody, keras.optimizers.schedules.LearningRateSchedule):
    pass


class P9PowerLoss(_P9PowerLossBody, serializable.SerializableLoss, package=LIB):
    pass


class P9AboveThreshold(
    _P9AboveThresholdBody, serializable.SerializableMetric, package=LIB
):
    pass


class P9Warmup(
    _P9WarmupBody, serializable.SerializableLearningRateSchedule, package=LIB
):
    pass


def _trained(
    rng, loss, metric, learning_rate
) -> tuple[keras.Model, np.ndarray, np.ndarray]:
    x, y = _inputs(rng, 8, 3), _inputs(rng, 8, 1)
    model = _wrap(keras.layers.Dense(1), (3,))
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=learning_rate),
        loss=loss,
        metrics=[metric],
    )
    model.fit(x, y, epochs=1, verbose=0)
    return model, x, y


def _compiled_metric(model: keras.Model, cls: type) -> keras.metrics.Metric:
    found = [m for top in model.metrics for m in getattr(top, "metrics", []) or []]
    matches = [m for m in found if isinstance(m, cls)]
    assert len(matches) == 1, found
    return matches[0]


class TestP9:
    def test_plain_keras_resets_loss_and_metric_parameters(self, fmt, tmp_path, rng):
        """Plain Keras silently reloads a custom loss and metric with their defaults."""
        model, x, y = _trained(
            rng, KerasP9PowerLoss(power=4), KerasP9AboveThreshold(threshold=0.5), 0.01
        )
        reloaded = keras.models.load_model(_save(model, tmp_path, fmt))
        reloaded.evaluate(x, y, verbose=0)  # compiled metrics are built lazily

        assert reloaded.loss.power == 3
        assert _compiled_metric(reloaded, KerasP9AboveThreshold).threshold == 0.1

    def test_plain_keras_refuses_schedule_at_save(self, fmt, tmp_path, rng):
        """Plain Keras cannot save a learning-rate schedule that has no get_config."""
        model, _, _ = _trained(rng, "mse", "mae", KerasP9Warmup(peak=0.5, steps=10))
        with pytest.raises(NotImplementedError, match="must override `get_config"):
            _save(model, tmp_path, fmt)

    def test_library_keeps_loss_metric_and_schedule_parameters(self, reload, rng):
        """Loss, metric and schedule parameters survive, so loss and rate agree."""
        model, x, y = _trained(
            rng,
            P9PowerLoss(power=4),
            P9AboveThreshold(threshold=0.5),
            P9Warmup(peak=0.5, steps=10),
        )
        expected = model.evaluate(x, y, verbose=0, return_dict=True)

        reloaded = reload(model)
        got = reloaded.evaluate(x, y, verbose=0, return_dict=True)

        assert type(reloaded.loss) is P9PowerLoss
        assert reloaded.loss.power == 4
        assert _compiled_metric(reloaded, P9AboveThreshold).threshold == 0.5
        assert got == pytest.approx(expected)
        # One step into a 10-step warmup to 0.5; the defaults would give 1e-5.
        assert int(reloaded.optimizer.iterations) == 1
        assert float(reloaded.optimizer.learning_rate) == pytest.approx(0.05)


# ---------------------------------------------------------------------------
# P13: __init__ mutates its list argument
# ---------------------------------------------------------------------------


# One body, registered with plain Keras to show the mutated list saved and
# with the library to show the arguments saved as passed.


class _P13PolynomialBody:
    """c0 + c1 x + c2 x**2 + ..., evaluated with Horner's rule."""

    def __init__(self, coefficients, **kwargs):
        super().__init__(**kwargs)
        coefficients.reverse()  # Horner's rule wants the highest power first
        self.coefficients = coefficients

    def call(self, x):
        y = keras.ops.zeros_like(x)
        for c in self.coefficients:
            y = y * x + c
        return y


@keras.saving.register_keras_serializable(package=KERAS)
class KerasP13Polynomial(_P13PolynomialBody, keras.layers.Layer):
    pass


@serializable.register_keras_serializable(package=LIB)
class P13Polynomial(_P13PolynomialBody, keras.layers.Layer):
    pass


class TestP13:
    def test_plain_keras_saves_the_mutated_list(self, reload):
        """Plain Keras saves the list after `__init__` reversed it: a new polynomial."""
        model = _wrap(KerasP13Polynomial([1.0, 2.0, 3.0]), (1,))
        x = np.linspace(-1.0, 1.0, 5, dtype="float32")[:, None]

        reloaded = reload(model)

        assert list(reloaded.layers[1].coefficients) == [1.0, 2.0, 3.0]
        assert not np.allclose(
            reloaded.predict(x, verbose=0), model.predict(x, verbose=0)
        )

    def test_library_saves_the_arguments_as_passed(self, reload):
        """The library saves the list as passed, so the reloaded layer is the same."""
        model = _wrap(P13Polynomial([1.0, 2.0, 3.0]), (1,))
        x = np.linspace(-1.0, 1.0, 5, dtype="float32")[:, None]

        reloaded = reload(model)

        assert list(reloaded.layers[1].coefficients) == [3.0, 2.0, 1.0]
        np.testing.assert_allclose(
            reloaded.predict(x, verbose=0), model.predict(x, verbose=0)
        )


# ---------------------------------------------------------------------------
# P14: two classes under one registered name
# ---------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package=KERAS, name="P14Scale")
class KerasP14Double(keras.layers.Layer):
    def call(self, x):
        return x * 2.0


@keras.saving.register_keras_serializable(package=KERAS, name="P14Scale")
class KerasP14Triple(keras.layers.Layer):
    def call(self, x):
        return x * 3.0


@serializable.register_keras_serializable(package=LIB, name="P14Scale")
class P14Double(keras.layers.Layer):
    def call(self, x):
        return x * 2.0


class TestP14:
    def test_plain_keras_lets_the_later_registration_win(self, reload):
        """Plain Keras silently reloads the first class as the second one."""
        model = _wrap(KerasP14Double(), (1,))
        x = np.ones((2, 1), dtype="float32")

        reloaded = reload(model)

        assert keras.saving.get_registered_object(f"{KERAS}>P14Scale") is KerasP14Triple
        assert type(reloaded.layers[1]) is KerasP14Triple
        np.testing.assert_allclose(reloaded.predict(x, verbose=0), 3.0 * x)

    def test_library_refuses_a_second_class_under_a_taken_name(self):
        """Registering a different class under a taken name raises RegistrationError."""
        with pytest.raises(serializable.RegistrationError, match="already taken"):

            @serializable.register_keras_serializable(package=LIB, name="P14Scale")
            class P14Triple(keras.layers.Layer):
                def call(self, x):
                    return x * 3.0

        with pytest.raises(serializable.RegistrationError, match="already taken"):

            class P14TripleBase(
                serializable.SerializableLayer, package=LIB, name="P14Scale"
            ):
                def call(self, x):
                    return x * 3.0

        registered = keras.saving.get_registered_object(f"{LIB}>P14Scale")
        assert registered is P14Double

    def test_library_allows_registering_the_same_class_again(self):
        """Registering the same class under its own name again is a no-op."""
        again = serializable.register_keras_serializable(package=LIB, name="P14Scale")
        assert again(P14Double) is P14Double
        registered = keras.saving.get_registered_object(f"{LIB}>P14Scale")
        assert registered is P14Double

    def test_library_reloads_the_first_registered_class(self, reload):
        """After a refused registration the file still reloads as the first class."""
        with pytest.raises(serializable.RegistrationError):

            @serializable.register_keras_serializable(package=LIB, name="P14Scale")
            class P14Other(keras.layers.Layer):
                def call(self, x):
                    return x * 3.0

        model = _wrap(P14Double(), (1,))
        x = np.ones((2, 1), dtype="float32")

        reloaded = reload(model)

        assert type(reloaded.layers[1]) is P14Double
        np.testing.assert_allclose(reloaded.predict(x, verbose=0), 2.0 * x)


# ---------------------------------------------------------------------------
# P16: __init__ without **kwargs, or a swallowed kwarg
# ---------------------------------------------------------------------------


# One layer with two faulty `__init__`s, each registered with plain Keras to
# show the base settings lost and with the library to show them kept.


class _P16MatMulBody:
    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), name="w")

    def call(self, x):
        return keras.ops.matmul(x, self.w)


class _P16NoKwargsBody(_P16MatMulBody):
    def __init__(self, units):
        super().__init__()
        self.units = units


class _P16SwallowedBody(_P16MatMulBody):
    def __init__(self, units, **kwargs):
        super().__init__()  # the kwargs never reach Layer
        self.units = units


@keras.saving.register_keras_serializable(package=KERAS)
class KerasP16NoKwargs(_P16NoKwargsBody, keras.layers.Layer):
    pass


@keras.saving.register_keras_serializable(package=KERAS)
class KerasP16Swallowed(_P16SwallowedBody, keras.layers.Layer):
    pass


@serializable.register_keras_serializable(package=LIB)
class P16NoKwargs(_P16NoKwargsBody, keras.layers.Layer):
    pass


class P16Swallowed(_P16SwallowedBody, serializable.SerializableLayer, package=LIB):
    pass


def _mixed_model(cls: type) -> tuple[keras.Model, keras.layers.Layer]:
    """A model built under mixed_float16, its layer renamed and frozen."""
    with _global_dtype_policy("mixed_float16"):
        layer = cls(2)
        layer.name = "p16_layer"
        layer.trainable = False
        model = _wrap(layer, (3,))
    return model, layer


class TestP16:
    def test_plain_keras_cannot_reload_init_without_kwargs(self, fmt, tmp_path):
        """Plain Keras passes name/trainable/dtype to an `__init__` without them."""
        model, _ = _mixed_model(KerasP16NoKwargs)
        path = _save(model, tmp_path, fmt)
        with pytest.raises(TypeError, match="got an unexpected keyword argument"):
            keras.models.load_model(path)

    def test_plain_keras_loses_swallowed_settings(self, reload):
        """Plain Keras silently drops name, trainable and dtype policy if swallowed."""
        model, layer = _mixed_model(KerasP16Swallowed)
        assert layer.dtype_policy.name == "mixed_float16"

        got = reload(model).layers[1]  # reloaded in a float32 session

        assert got.name != "p16_layer"
        assert got.trainable
        assert got.dtype_policy.name == "float32"

    @pytest.mark.parametrize("cls", [P16NoKwargs, P16Swallowed])
    def test_library_keeps_base_settings(self, reload, assert_same_weights, rng, cls):
        """Name, trainable and the mixed_float16 policy survive either `__init__`."""
        model, _ = _mixed_model(cls)
        x = _inputs(rng, 2, 3)

        reloaded = reload(model)  # reloaded in a float32 session
        got = reloaded.layers[1]

        assert type(got) is cls
        assert got.name == "p16_layer"
        assert not got.trainable
        assert got.dtype_policy.name == "mixed_float16"
        assert got.compute_dtype == "float16"
        assert_same_weights(model, reloaded)
        np.testing.assert_allclose(
            reloaded.predict(x, verbose=0), model.predict(x, verbose=0)
        )


# ---------------------------------------------------------------------------
# P22: a model's own constructor arguments
# ---------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package=KERAS)
class KerasP22Net(keras.Model):
    def __init__(self, units=8, **kwargs):
        inputs = keras.Input((4,))
        outputs = keras.layers.Dense(units)(inputs)
        super().__init__(inputs, outputs, **kwargs)


# One body, registered by decorator and by subclassing the library's base, to
# show both ways keep the arguments; P22MLP is P6's MLP on the library's base.


class _P22NetBody:
    def __init__(self, units=8, **kwargs):
        inputs = keras.Input((4,))
        outputs = keras.layers.Dense(units)(inputs)
        super().__init__(inputs, outputs, **kwargs)
        self.units = units


@serializable.register_keras_serializable(package=LIB)
class P22Net(_P22NetBody, keras.Model):
    pass


class P22BaseNet(_P22NetBody, serializable.SerializableModel, package=LIB):
    pass


class P22MLP(_MLPBody, serializable.SerializableModel, package=LIB):
    pass


class TestP22:
    # `.keras` warns that it skips a container before it fails on the weights;
    # the failure is what this test is about.
    @pytest.mark.filterwarnings("ignore:Skipping nested container:UserWarning")
    def test_plain_keras_rebuilds_functional_subclass_with_defaults(
        self, fmt, tmp_path
    ):
        """Plain Keras drops a Functional subclass's arguments and rebuilds defaults."""
        model = KerasP22Net(units=3)
        assert "units" not in model.get_config()
        path = _save(model, tmp_path, fmt)
        # custom_objects gets `.h5` past P6 to this pitfall.
        expected_width = {
            "keras": r"variable\.shape=\(4, 8\)",
            "h5": r"expects shape \(4, 8\)",
        }[fmt]
        with pytest.raises(ValueError, match=expected_width):
            keras.models.load_model(path, custom_objects={"KerasP22Net": KerasP22Net})

    def test_plain_keras_subclassed_model_config_has_defaults(self):
        """Plain Keras saves a subclassed Model's defaults, not its arguments."""
        assert KerasP6MLP(hidden=5).get_config()["hidden"] == 4

    @pytest.mark.parametrize("cls", [P22Net, P22BaseNet])
    def test_library_keeps_functional_subclass_arguments(
        self, reload, assert_same_weights, rng, cls
    ):
        """A Functional subclass reloads with its own arguments, not the defaults."""
        model = cls(units=3)
        x = _inputs(rng, 2, 4)

        reloaded = reload(model)

        assert type(reloaded) is cls
        assert reloaded.units == 3
        assert reloaded.output_shape == (None, 3)
        assert_same_weights(model, reloaded)
        np.testing.assert_allclose(
            reloaded.predict(x, verbose=0), model.predict(x, verbose=0)
        )

    def test_library_keeps_subclassed_model_arguments(
        self, reload, assert_same_weights, rng
    ):
        """A subclassed SerializableModel reloads with its own arguments."""
        model = P22MLP(hidden=5)
        x = _inputs(rng, 2, 4)
        expected = model.predict(x, verbose=0)

        reloaded = reload(model)

        assert type(reloaded) is P22MLP
        assert reloaded.hidden_layer.units == 5
        assert_same_weights(model, reloaded)
        np.testing.assert_allclose(reloaded.predict(x, verbose=0), expected)

    def test_functional_subclass_leaves_serializable_model_alone(self):
        """Making one subclass Functional does not make SerializableModel Functional."""
        P22BaseNet(units=2)

        assert not issubclass(serializable.SerializableModel, Functional)
        assert not issubclass(P22MLP, Functional)


# ---------------------------------------------------------------------------
# P23: a model class with its own compile()
# ---------------------------------------------------------------------------


class _OwnCompileBody:
    """Overrides compile() and compiles itself with defaults, as keras-hub's
    task models do."""

    def __init__(self, units=1, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.dense = keras.layers.Dense(units)
        self.compile()

    def call(self, x):
        return self.dense(x)

    def compile(self, optimizer="sgd", loss="mse", **kwargs):
        super().compile(optimizer=optimizer, loss=loss, **kwargs)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package=KERAS)
class KerasP23Model(_OwnCompileBody, keras.Model):
    pass


@keras.saving.register_keras_serializable(package=LIB)
class P23Model(_OwnCompileBody, keras.Model):
    pass


def _trained_p23(cls: type, rng: np.random.Generator) -> tuple[keras.Model, Any]:
    model = cls()
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mae")
    x, y = _inputs(rng, 8, 4), _inputs(rng, 8, 1)
    model.train_on_batch(x, y)
    return model, (x, y)


class TestP23:
    # Keras then also warns that the saved state does not fit the default
    # optimizer; the skipped compile is what this test is about.
    @pytest.mark.filterwarnings("ignore:Skipping variable loading:UserWarning")
    def test_plain_keras_skips_compiling_a_custom_compile(self, tmp_path, rng):
        """Plain Keras reloads the class's default optimizer, without its state."""
        model, _ = _trained_p23(KerasP23Model, rng)
        path = _save(model, tmp_path, "keras")
        with pytest.warns(UserWarning, match="was not called as part of model"):
            reloaded = keras.models.load_model(path)
        assert isinstance(reloaded.optimizer, keras.optimizers.SGD)
        assert int(reloaded.optimizer.iterations) == 0

    def test_library_compiles_as_saved_with_optimizer_state(self, fmt, tmp_path, rng):
        """The class's compile() gets the saved arguments; training resumes exactly."""
        model, (x, y) = _trained_p23(P23Model, rng)
        path = serializable.save_model(model, tmp_path / f"model.{fmt}")
        reloaded = serializable.load_model(path)
        assert isinstance(reloaded.optimizer, keras.optimizers.Adam)
        assert int(reloaded.optimizer.iterations) == 1
        np.testing.assert_allclose(
            reloaded.train_on_batch(x, y), model.train_on_batch(x, y), rtol=1e-6
        )
