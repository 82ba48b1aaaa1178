"""`_keras_compat`: each wrapper agrees with the Keras internal it stands for,
and each public fallback agrees with the internal path, so a Keras release
without the internal still gets the same answer."""

from __future__ import annotations

import enum
import os

import h5py
import keras
import numpy as np
import pytest

from serializable import _keras_compat as compat


def test_runs_on_the_keras_asked_for():
    """`python3 dev.py test` runs this file at the oldest supported Keras too;
    make sure that run really imported that Keras."""
    expected = os.environ.get("SERIALIZABLE_EXPECT_KERAS")
    if expected is None:
        pytest.skip("no particular Keras version asked for")
    assert keras.__version__ == expected


def nested_model() -> keras.Model:
    inputs = keras.Input((4,))
    block = keras.Sequential(
        [keras.layers.Dense(3), keras.layers.BatchNormalization()], name="block"
    )
    x = block(inputs)
    outputs = keras.layers.Dense(2, name="head")(x)
    return keras.Model(inputs, outputs)


def test_functional_class_without_keras_src_is_the_same_class():
    from keras.src.models.functional import Functional

    assert compat.functional_class() is Functional
    assert compat._functional_class_public() is Functional
    assert compat.is_functional(nested_model())
    assert not compat.is_functional(keras.Sequential([keras.layers.Dense(1)]))


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((1, 2), {}),
        ((1,), {"outputs": 2}),
        ((), {"inputs": 1, "outputs": 2}),
        ((), {"inputs": 1}),
        ((1,), {}),
        ((), {"name": "m"}),
    ],
)
def test_functional_init_arguments_agrees_with_keras(args, kwargs):
    from keras.src.models.model import functional_init_arguments

    expected = functional_init_arguments(args, kwargs)
    assert compat.functional_init_arguments(args, kwargs) == expected


def test_layer_walk_without_private_api_finds_the_same_layers():
    model = nested_model()
    expected = model._flatten_layers(include_self=False, recursive=True)
    assert compat.flatten_layers(model) == list(expected)
    walked = compat._walk_layers(model, include_self=False)
    # The public walk misses only the Sequential's InputLayer.
    expected = [x for x in expected if not isinstance(x, keras.layers.InputLayer)]
    walked = [x for x in walked if not isinstance(x, keras.layers.InputLayer)]
    assert {id(x) for x in walked} == {id(x) for x in expected}
    assert len(walked) == len(expected) == 4


def test_own_variables_without_private_api_are_the_same():
    class WithOwn(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)
            self.scale = self.add_weight(shape=(2,), initializer="ones")
            self.count = self.add_weight(shape=(), trainable=False)

        def call(self, x):
            return self.dense(x) * self.scale

    model = WithOwn()
    model(np.zeros((1, 3), "float32"))
    own = compat.own_variables(model)
    assert [v.path for v in own] == [model.scale.path, model.count.path]
    assert [v.path for v in compat._own_variables_public(model)] == [
        v.path for v in own
    ]


@pytest.mark.parametrize("count", [3, 4000])
def test_h5_attributes_match_keras_layout(tmp_path, count):
    """Written like Keras's legacy helper (chunked past 64 KiB), read by it,
    and Keras's own writing read back."""
    from keras.src.legacy.saving import legacy_h5_format as keras_h5

    names = [f"layer_with_a_long_name_{i}/kernel".encode() for i in range(count)]
    with h5py.File(tmp_path / "a.h5", "w") as handle:
        ours, theirs = handle.create_group("ours"), handle.create_group("theirs")
        compat.save_h5_attributes(ours, "weight_names", names)
        keras_h5.save_attributes_to_hdf5_group(theirs, "weight_names", names)
        assert sorted(ours.attrs) == sorted(theirs.attrs)
        assert (len(ours.attrs) > 1) == (count > 1000)
        expected = [n.decode() for n in names]
        assert keras_h5.load_attributes_from_hdf5_group(ours, "weight_names") == (
            expected
        )
        assert compat.load_h5_attributes(theirs, "weight_names") == expected
        assert compat.load_h5_attributes(ours, "absent") == []


def test_legacy_weights_agree_with_keras():
    from keras.src.legacy.saving import legacy_h5_format as keras_h5

    layer = keras.layers.BatchNormalization()
    layer.build((None, 3))
    assert compat.legacy_weights(layer) == keras_h5._legacy_weights(layer)


@pytest.mark.parametrize(
    "value",
    [np.float32(1.5), np.arange(3), np.array(2.0), keras.activations.relu],
)
def test_json_default_fallback_agrees_with_keras(value):
    from keras.src.legacy.saving import json_utils

    expected = json_utils.get_json_type(value)
    assert compat._json_default(value) == expected
    assert compat.legacy_json_default(value) == expected


class Shade(enum.Enum):
    LIGHT = 1


def registered_fn(x):
    return x


def test_registered_name_public_api():
    def unregistered(x):
        return x

    keras.saving.register_keras_serializable(package="compat_test")(registered_fn)
    assert compat.registered_name(registered_fn) == "compat_test>registered_fn"
    assert compat.registered_name(unregistered) is None
    assert compat.registered_name([1, 2]) is None  # unhashable
    assert compat.registered_name(3) is None  # no __name__
    assert not compat.is_registered(keras.layers.Dense)
    compat.register_name(Shade, "compat_test>Shade")
    assert compat.registered_name(Shade) == "compat_test>Shade"
    assert keras.saving.get_registered_name(Shade) == "compat_test>Shade"
    assert keras.saving.get_custom_objects()["compat_test>Shade"] is Shade


def test_keras_builtin_names_cover_the_class_names_keras_writes():
    names = compat.keras_builtin_names()
    # A class name (written in configs) that differs from its exported name.
    assert "GroupedQueryAttention" in names
    assert {"Dense", "Functional", "Sequential", "InputLayer", "Model"} <= names
    assert "NotEqual" not in names
    assert compat.operation_class("NotEqual").__name__ == "NotEqual"
    assert compat.operation_class("Cast").__name__ == "Cast"
    assert compat.operation_class("NoSuchOperation") is None


def compiled_model() -> keras.Model:
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    return model


def test_keras_legacy_writer_still_drops_the_optimizer():
    """The bug `keep_compile_config` works around: when this fails, Keras has
    fixed it in every release of the range, and the workaround can go."""
    from keras.src.legacy.saving import saving_options, saving_utils

    model = compiled_model()
    with saving_options.keras_option_scope(use_legacy_config=True):
        saving_utils.model_metadata(model, True)
    assert "optimizer" not in model.get_compile_config()


def test_legacy_metadata_keeps_the_compile_config():
    model = compiled_model()
    before = model.get_compile_config()
    metadata = compat.legacy_model_metadata(model, True)
    assert "optimizer_config" in metadata["training_config"]
    assert model.get_compile_config() == before


def test_compiled_user_metrics():
    model = compiled_model()
    assert compat.compiled_user_metrics(model) == [["mae"], None]
    assert compat.compiled_user_metrics(keras.Sequential()) is None


def test_deferred_initialization_is_available():
    assert compat.can_defer_initialization()
    assert not compat.in_stateless_scope()
    with keras.StatelessScope():
        assert compat.in_stateless_scope()


def hide(monkeypatch, module: str) -> None:
    """Make `import module` fail, as in a Keras release without it."""
    import importlib
    import sys

    parent, _, child = module.rpartition(".")
    monkeypatch.delattr(importlib.import_module(parent), child, raising=False)
    monkeypatch.setitem(sys.modules, module, None)


def test_without_legacy_saving_h5_is_refused_clearly(monkeypatch, tmp_path):
    import serializable

    hide(monkeypatch, "keras.src.legacy.saving")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    with pytest.raises(serializable.FormatLimitError, match=r"Save and load `\.keras`"):
        serializable.save_model(model, tmp_path / "m.h5")
    serializable.save_model(model, tmp_path / "m.keras")  # .keras is unaffected


def test_without_global_state_h5_loads_the_ordinary_way(monkeypatch, tmp_path):
    import serializable

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    serializable.save_model(model, tmp_path / "m.h5")
    hide(monkeypatch, "keras.src.backend.common.global_state")
    assert not compat.can_defer_initialization()
    restored = serializable.load_model(tmp_path / "m.h5")
    x = np.ones((1, 2), "float32")
    np.testing.assert_array_equal(
        model.predict(x, verbose=0), restored.predict(x, verbose=0)
    )


class Tint(enum.Enum):
    DARK = 1


def test_without_the_reverse_map_enum_names_are_kept_here(monkeypatch):
    hide(monkeypatch, "keras.src.saving.object_registration")
    monkeypatch.setattr(compat, "_EXTRA_NAMES", {})
    compat.register_name(Tint, "compat_test>Tint")
    assert compat.registered_name(Tint) == "compat_test>Tint"
    assert keras.saving.get_custom_objects()["compat_test>Tint"] is Tint


def test_compile_skipped_on_load_matches_keras():
    """True exactly for the classes Keras's compile_from_config skips."""
    import keras

    from serializable._keras_compat import compile_skipped_on_load

    class OwnCompile(keras.Model):
        def compile(self, *args, **kwargs):
            super().compile(*args, **kwargs)

    class OwnBoth(OwnCompile):
        def compile_from_config(self, config):
            self.compile(**config)

    assert not compile_skipped_on_load(keras.Model)
    assert not compile_skipped_on_load(keras.Sequential)
    assert compile_skipped_on_load(OwnCompile)
    assert not compile_skipped_on_load(OwnBoth)
