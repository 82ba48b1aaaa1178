"""Generated get_config/from_config: every supported value type, both formats."""

from __future__ import annotations

import enum
import json

import keras
import numpy as np
import pytest

import serializable
from serializable import SerializableLayer, register_keras_serializable


@register_keras_serializable(package="test_config")
class Mode(enum.Enum):
    FAST = "fast"
    SLOW = "slow"


@register_keras_serializable(package="test_config")
class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@register_keras_serializable(package="test_config")
def doubled_relu(x):
    return keras.ops.relu(x) * 2.0


@register_keras_serializable(package="test_config")
class OnesLike(keras.initializers.Initializer):
    """A registered custom initializer with a parameter and no get_config."""

    def __init__(self, scale=1.0):
        self.scale = scale

    def __call__(self, shape, dtype=None):
        return keras.ops.ones(shape, dtype=dtype) * self.scale


class Holder(SerializableLayer, package="test_config"):
    """Keeps one argument of any type; passes its input through."""

    def __init__(self, value, **kwargs):
        super().__init__(**kwargs)
        self.value = value

    def call(self, x):
        return x


def same(a, b) -> bool:
    """Equal in value *and* type, all the way down.

    Keras wraps list and dict attributes of a layer in its tracking subclasses;
    those count as list and dict (a tuple that came back as a list does not).
    """
    if _base_type(a) is not _base_type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    if isinstance(a, np.generic):
        return a.dtype == b.dtype and a == b
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float) and np.isnan(a):
        return np.isnan(b)
    if hasattr(a, "get_config") and not isinstance(a, type):
        return a.get_config() == b.get_config()
    return a == b


def as_json(config) -> str:
    """Compare configs as JSON text, so NaN equals NaN and tuples cannot hide."""
    return json.dumps(config, sort_keys=True, default=lambda o: f"<{type(o).__name__}>")


def _base_type(value) -> type:
    if isinstance(value, list):
        return list
    if isinstance(value, dict):
        return dict
    return type(value)


PLAIN_VALUES = {
    "none": None,
    "true": True,
    "int": 7,
    "negative_float": -2.5,
    "nan": float("nan"),
    "str": "blank",
    # Legacy .h5 loading turns a str that names a function into that function.
    "str_named_like_keras_function": "concatenate",
    "str_named_like_registered_function": "test_config>doubled_relu",
    "empty_list": [],
    "list": [1, 2.0, "x", None],
    "tuple": (1, 2),
    "empty_tuple": (),
    "nested_tuple": ((1, 2), [3, (4,)]),
    "dict": {"a": 1, "b": [2, 3]},
    "dict_int_keys": {0: "pad", 1: "a"},
    "dict_tuple_keys": {(0, 1): "pair"},
    "dict_with_reserved_key": {"__serializable__": "not a tag"},
    "enum": Mode.SLOW,
    "int_enum": Level.HIGH,
    "enums_in_list": [Mode.FAST, Level.LOW],
}

NUMPY_VALUES = {
    "float32_matrix": np.arange(6, dtype="float32").reshape(2, 3) / 3,
    "int8_vector": np.array([-1, 0, 127], dtype="int8"),
    "bool_array": np.array([[True, False]]),
    "zero_d_array": np.array(3.25, dtype="float64"),
    "empty_array": np.zeros((0, 4), dtype="float32"),
    "large_float64": np.random.default_rng(1).normal(size=(40, 30)),
    "complex": np.array([1 + 2j, -0.5j], dtype="complex64"),
    "strings": np.array(["a", "bc"]),
    "uint16_large": np.arange(1000, dtype="uint16"),
    "np_int64": np.int64(2**40),
    "np_float16": np.float16(0.1),
    "np_bool": np.bool_(True),
    "np_float32_in_tuple": (np.float32(1.5), np.int32(2)),
    "arrays_in_dict": {"mean": np.ones(3, "float32"), "std": np.float64(2.0)},
}

KERAS_VALUES = {
    "initializer": keras.initializers.HeNormal(seed=3),
    "regularizer": keras.regularizers.L1L2(l1=0.01, l2=0.02),
    "constraint": keras.constraints.MaxNorm(max_value=2.0, axis=1),
    "activation_str": "gelu",
    "activation_fn": keras.activations.swish,
    "loss": keras.losses.Huber(delta=0.3),
    "metric": keras.metrics.AUC(num_thresholds=50),
    "optimizer": keras.optimizers.Adam(learning_rate=0.003, beta_1=0.8),
    "dtype_policy": keras.DTypePolicy("mixed_float16"),
    "registered_function": doubled_relu,
    "registered_initializer": OnesLike(scale=0.5),
    "schedule": keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.9),
    "list_of_initializers": [keras.initializers.Zeros(), OnesLike(2.0)],
}

ALL_VALUES = {**PLAIN_VALUES, **NUMPY_VALUES, **KERAS_VALUES}


def holder_model(value):
    inputs = keras.Input((3,))
    x = keras.layers.Dense(3, name="dense")(inputs)
    outputs = Holder(value, name="holder")(x)
    return keras.Model(inputs, outputs)


@register_keras_serializable(package="test_config")
class Speed(enum.Enum):
    """A registered Enum: found through the registry, not by module path."""

    SLOW = 1
    FAST = 2


class TestValueTypes:
    def test_registered_enum(self, fmt, reload):
        """An Enum registered with the decorator round-trips by registered name."""
        assert keras.saving.get_registered_name(Speed) == "test_config>Speed"
        config = Holder(Speed.FAST).get_config()
        assert config["value"]["enum"] == "test_config>Speed"
        assert reload(holder_model(Speed.FAST)).get_layer("holder").value is Speed.FAST

    @pytest.mark.parametrize("key", sorted(ALL_VALUES))
    def test_value_round_trips_with_type(self, key, fmt, reload, rng):
        """Each supported value comes back from the file as the same type and value."""
        value = ALL_VALUES[key]
        model = holder_model(value)
        x = rng.normal(size=(4, 3)).astype("float32")
        expected = model.predict(x, verbose=0)

        restored = reload(model)

        got = restored.get_layer("holder").value
        assert same(value, got), f"{key}: saved {value!r}, reloaded {got!r}"
        assert as_json(restored.get_layer("holder").get_config()) == as_json(
            model.get_layer("holder").get_config()
        )
        np.testing.assert_array_equal(restored.predict(x, verbose=0), expected)

    def test_all_types_nested_together(self, fmt, reload):
        """A single argument nesting every kind of value round-trips intact."""
        value = {"plain": PLAIN_VALUES, "numpy": NUMPY_VALUES, "keras": KERAS_VALUES}
        value = {
            k: {str(i): v for i, v in enumerate(d.values())} for k, d in value.items()
        }
        model = holder_model((value, [value["numpy"]]))
        got = reload(model).get_layer("holder").value
        assert same((value, [value["numpy"]]), got)

    def test_config_is_plain_json(self):
        """get_config holds only JSON types, so both formats store it unchanged."""
        config = Holder(ALL_VALUES).get_config()
        assert as_json(json.loads(json.dumps(config))) == as_json(config)


class Inner(SerializableLayer, package="test_config"):
    """A layer with a trainable weight built from the input shape."""

    def __init__(self, units, initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.initializer = initializer

    def build(self, input_shape):
        self.kernel = self.add_weight(
            shape=(input_shape[-1], self.units),
            initializer=self.initializer,
            name="kernel",
        )

    def call(self, x):
        return keras.ops.matmul(x, self.kernel)


class Wrapper(SerializableLayer, package="test_config"):
    """Wraps a nested layer passed in and builds it in its own build (P3)."""

    def __init__(self, inner, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.inner = inner
        self.scale = scale

    def build(self, input_shape):
        self.inner.build(input_shape)

    def call(self, x):
        return self.inner(x) * self.scale


class TestNestedLayers:
    def test_nested_layer_keeps_trained_weights(
        self, fmt, reload, rng, assert_same_weights
    ):
        """A layer passed as an argument comes back with its trained weights."""
        inputs = keras.Input((4,))
        outputs = Wrapper(Inner(3, initializer=keras.initializers.HeNormal(seed=0)))(
            inputs
        )
        model = keras.Model(inputs, outputs)
        model.compile(optimizer="adam", loss=keras.losses.MeanSquaredError())
        x = rng.normal(size=(16, 4)).astype("float32")
        model.fit(x, rng.normal(size=(16, 3)), epochs=2, verbose=0)

        restored = reload(model)

        assert isinstance(restored.layers[1].inner, Inner)
        assert isinstance(
            restored.layers[1].inner.initializer, keras.initializers.HeNormal
        )
        assert_same_weights(model, restored)
        np.testing.assert_array_equal(
            restored.predict(x, verbose=0), model.predict(x, verbose=0)
        )

    def test_nested_keras_layer(self, fmt, reload, rng, assert_same_weights):
        """A built-in Keras layer passed as an argument keeps config and weights."""
        inputs = keras.Input((4,))
        dense = keras.layers.Dense(2, activation="tanh", name="inner_dense")
        outputs = Wrapper(dense, scale=0.5)(inputs)
        model = keras.Model(inputs, outputs)
        restored = reload(model)
        inner = restored.layers[1].inner
        assert isinstance(inner, keras.layers.Dense) and inner.units == 2
        assert_same_weights(model, restored)

    def test_child_built_by_deserialization_is_not_built_again(self):
        """from_config on a built child plus the parent's build() does not raise (P3)."""
        layer = Wrapper(Inner(2))
        layer.build((None, 3))
        clone = Wrapper.from_config(layer.get_config())
        assert clone.inner.built
        clone.build((None, 3))
        assert len(clone.weights) == 1


class TestSignatures:
    def test_positional_keyword_defaults_and_kwargs(self):
        """Arguments passed positionally, by keyword, by default and via **kwargs are all kept."""

        config = Holder([1], name="h", trainable=False).get_config()
        assert config["value"] == [1]
        assert config["name"] == "h"
        assert config["trainable"] is False
        restored = Holder.from_config(config)
        assert restored.name == "h" and restored.trainable is False

    def test_varargs_and_positional_only(self, fmt, reload):
        """`*args` and positional-only parameters are restored positionally."""
        model = keras.Sequential(
            [keras.Input((2,)), VarArgs(1, 2, 3, 4, flag=True, name="va")]
        )
        layer = reload(model).get_layer("va")
        assert (layer.first, layer.rest, layer.flag) == (1, (2, 3, 4), True)

    def test_keyword_only_and_kwargs_order(self):
        """Keyword-only arguments and **kwargs extras are captured in signature order."""
        layer = KeywordOnly(1, scale=2.0, name="k", trainable=False)
        config = layer.get_config()
        assert list(config)[:3] == ["units", "scale", "name"]
        assert (config["units"], config["scale"]) == (1, 2.0)
        clone = KeywordOnly.from_config(config)
        assert (clone.units, clone.scale, clone.trainable) == (1, 2.0, False)

    @pytest.mark.parametrize(
        ("args", "kwargs", "error"),
        [
            ((), {}, "missing 1 required positional argument: 'units'"),
            ((1, 2), {}, "takes 2 positional arguments but 3 were given"),
            ((1,), {"units": 2}, "multiple values for argument 'units'"),
        ],
    )
    def test_bad_arguments_raise_pythons_own_error(self, args, kwargs, error):
        """Arguments that do not fit __init__ get Python's usual TypeError, not ours."""
        with pytest.raises(TypeError, match=error):
            KeywordOnly(*args, **kwargs)

    def test_defaults_are_recorded(self):
        """Defaults are written into the config, so changing a default later cannot change a saved model."""
        config = Inner(4).get_config()
        assert config["initializer"] == "glorot_uniform"


class KeywordOnly(SerializableLayer, package="test_config"):
    def __init__(self, units, *, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.scale = scale

    def call(self, x):
        return x


class VarArgs(SerializableLayer, package="test_config"):
    def __init__(self, first, /, *rest, flag=False, **kwargs):
        super().__init__(**kwargs)
        self.first = first
        self.rest = rest
        self.flag = flag

    def call(self, x):
        return x


class TestMutation:
    def test_init_that_mutates_its_argument(self, fmt, reload):
        """An __init__ that appends to its list argument still saves what was passed (P13)."""
        sizes = [4, 2]
        model = keras.Sequential([keras.Input((3,)), Mutating(sizes, name="m")])
        assert sizes == [4, 2, 1]  # the user's list was mutated by __init__
        layer = reload(model).get_layer("m")
        assert layer.get_config()["sizes"] == [4, 2]
        assert layer.sizes == [4, 2, 1]

    def test_caller_mutating_after_construction(self):
        """Mutating a passed array after construction does not change the config."""
        table = np.zeros(3, "float32")
        layer = Holder(table)
        table[0] = 9.0
        assert Holder.from_config(layer.get_config()).value[0] == 0.0


class Mutating(SerializableLayer, package="test_config"):
    def __init__(self, sizes, **kwargs):
        super().__init__(**kwargs)
        sizes.append(1)
        self.sizes = sizes

    def call(self, x):
        return x


class TestPublicSurface:
    def test_backend_specific_code_lives_in_backends(self):
        """Library code uses keras/keras.ops/numpy; a backend only in serializable._backends."""
        import pathlib
        import re

        src = pathlib.Path(serializable.__file__).parent
        homes = {
            "tensorflow": "tensorflow_ops.py",
            "tf_keras": None,
            "jax": "jax_ops.py",
            "torch": "torch_ops.py",
            "pickle": None,
        }
        for package, home in homes.items():
            pattern = rf"^\s*(import|from)\s+{package}\b"
            # A backend's modules in _backends/ are named after it
            # (tensorflow_ops.py, tensorflow_keras2.py, ...).
            offenders = [
                str(p.relative_to(src))
                for p in src.rglob("*.py")
                if re.search(pattern, p.read_text(), re.M)
                and not (
                    home is not None
                    and p.parent.name == "_backends"
                    and p.name.startswith(home.split("_")[0] + "_")
                )
            ]
            assert offenders == [], package
            if home is not None:
                assert re.search(pattern, (src / "_backends" / home).read_text(), re.M)
        # Decisions on the backend are made in _backends only.
        decides = re.compile(r"backend\(\)\s*(==|!=|in\b)")
        offenders = [
            str(p.relative_to(src))
            for p in src.rglob("*.py")
            if decides.search(p.read_text()) and p.parent.name != "_backends"
        ]
        assert offenders == []
