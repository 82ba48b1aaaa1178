"""assert_roundtrip: passes on correct objects of every kind, names every planted bug."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import serializable
from serializable import (
    RoundtripError,
    RoundtripReport,
    SerializableLayer,
    SerializableModel,
    assert_roundtrip,
)
from serializable.testing import registered_modules, synthesize_inputs

pytest_plugins = ["pytester"]


class Block(SerializableLayer, package="test_roundtrip"):
    def __init__(self, units=4, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.dense = keras.layers.Dense(units)

    def call(self, x):
        return keras.ops.relu(self.dense(x))


class Net(SerializableModel, package="test_roundtrip"):
    def __init__(self, width=4, **kwargs):
        super().__init__(**kwargs)
        self.width = width
        self.block = Block(width)
        self.head = keras.layers.Dense(2)

    def call(self, x):
        return self.head(self.block(x))


def functional():
    inputs = keras.Input((3,))
    return keras.Model(inputs, keras.layers.Dense(2)(Block(5)(inputs)))


def sequential():
    return keras.Sequential([keras.Input((3,)), Block(3), keras.layers.Dense(1)])


def subclassed():
    model = Net(4)
    model(np.zeros((1, 3), "float32"))
    return model


def multi_io():
    a, b = keras.Input((3,), name="a"), keras.Input((2,), dtype="int32", name="b")
    ids = keras.layers.Embedding(2, 3)(b)
    merged = keras.layers.Concatenate()([a, keras.layers.Flatten()(ids)])
    return keras.Model([a, b], [keras.layers.Dense(1)(merged), Block(2)(merged)])


MODELS = {
    "functional": functional,
    "sequential": sequential,
    "subclassed": subclassed,
    "multi_input_output": multi_io,
}


class TestPasses:
    @pytest.mark.parametrize("name", sorted(MODELS))
    def test_models_in_both_formats(self, name, tmp_path):
        """Correct models of every kind pass in both formats, with a report."""
        report = assert_roundtrip(MODELS[name](), tmp_path=tmp_path)
        assert isinstance(report, RoundtripReport)
        assert set(report.formats) == {"keras", "h5"}
        for fmt in report.formats.values():
            assert fmt.file_bytes > 0 and fmt.load_seconds > 0
            assert {"class", "config", "weights", "outputs"} <= set(fmt.checked)
        assert "KiB" in str(report)

    def test_compiled_trained_model_keras(self, tmp_path, rng):
        """A compiled, trained model passes in .keras with compile, optimizer and training checks."""
        model = subclassed()
        model.compile(
            optimizer=keras.optimizers.Adam(1e-2),
            loss=keras.losses.Huber(delta=0.5),
            metrics=[keras.metrics.MeanAbsoluteError()],
        )
        x, y = rng.normal(size=(16, 3)), rng.normal(size=(16, 2))
        model.fit(x, y, epochs=1, batch_size=8, verbose=0)
        before = [keras.ops.convert_to_numpy(w) for w in model.weights]
        report = assert_roundtrip(
            model, x[:4].astype("float32"), formats=("keras",), tmp_path=tmp_path
        )
        checked = report.formats["keras"].checked
        assert {"compile state", "optimizer state", "training step"} <= set(checked)
        for w, b in zip(model.weights, before, strict=True):  # original untouched
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(w), b)

    def test_compiled_trained_model_both_formats_using_serializable(
        self, tmp_path, rng
    ):
        """Through save_model/load_model a compiled, trained model passes in .h5 too."""
        model = sequential()
        model.compile(optimizer="adam", loss="mse", metrics=["mae"])
        model.fit(rng.normal(size=(8, 3)), rng.normal(size=(8, 1)), verbose=0)
        with pytest.raises(RoundtripError, match="h5: load failed"):
            assert_roundtrip(model, tmp_path=tmp_path / "plain")  # P7 in plain Keras
        report = assert_roundtrip(
            model, tmp_path=tmp_path / "ours", using="serializable"
        )
        assert "training step" in report.formats["h5"].checked

    def test_single_layer(self, tmp_path):
        """A single layer is wrapped in a model; built layers need no inputs."""
        layer = Block(3)
        layer(np.zeros((2, 5), "float32"))
        assert_roundtrip(layer, tmp_path=tmp_path)
        assert_roundtrip(Block(2), np.ones((2, 4), "float32"), tmp_path=tmp_path)

    @pytest.mark.parametrize(
        "obj",
        [
            keras.losses.Huber(delta=0.7),
            keras.metrics.AUC(num_thresholds=20),
            keras.initializers.HeNormal(seed=1),
            keras.regularizers.L2(0.02),
            keras.constraints.MaxNorm(1.5),
            keras.optimizers.schedules.ExponentialDecay(0.1, 5, 0.5),
        ],
        ids=lambda o: type(o).__name__,
    )
    def test_non_layer_objects(self, obj, tmp_path):
        """Losses, metrics, initializers, regularizers, constraints, schedules pass in both formats."""
        report = assert_roundtrip(obj, tmp_path=tmp_path)
        assert "compile state" in report.formats["h5"].checked

    def test_optimizer_keras_format(self, tmp_path):
        """An optimizer passes in .keras, where its slots are saved."""
        assert_roundtrip(
            keras.optimizers.Adam(3e-3, beta_1=0.8),
            formats=("keras",),
            tmp_path=tmp_path,
        )

    def test_synthesized_inputs_respect_dtypes(self):
        """Synthesized inputs follow each input's shape and dtype, seeded."""
        a, b = synthesize_inputs(multi_io(), seed=3)
        assert a.shape == (4, 3) and a.dtype == np.float32
        assert b.shape == (4, 2) and b.dtype == np.int32 and set(np.unique(b)) <= {0, 1}
        np.testing.assert_array_equal(synthesize_inputs(multi_io(), seed=3)[0], a)


@keras.saving.register_keras_serializable(package="test_roundtrip_bugs")
class DropsArgument(keras.layers.Layer):
    """Planted bug: a hand-written get_config that forgets `scale`."""

    def __init__(self, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def get_config(self):
        return super().get_config()

    def call(self, x):
        return x * self.scale


class Scales(SerializableLayer, package="test_roundtrip_bugs"):
    def __init__(self, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def call(self, x):
        return x * self.scale


class ForgetsWeights(SerializableLayer, package="test_roundtrip_bugs"):
    """Planted bug: the weight is never restored from the file."""

    def build(self, shape):
        self.kernel = self.add_weight(
            shape=(shape[-1],), initializer="random_normal", name="kernel"
        )

    def call(self, x):
        return x * self.kernel

    def load_own_variables(self, store):
        pass


class Normalizer(SerializableLayer, package="test_roundtrip_bugs"):
    """Planted bug: statistics learned by adapt() live in a plain attribute."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.mean = np.zeros(3, "float32")

    def adapt(self, data):
        self.mean = np.asarray(data, "float32").mean(axis=0)

    def call(self, x):
        return x - self.mean


class RandomOffset(SerializableLayer, package="test_roundtrip_bugs"):
    """Planted bug: the output depends on a value drawn at construction."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.offset = keras.ops.convert_to_tensor(
            np.random.default_rng().normal(size=(3,)), "float32"
        )

    def call(self, x):
        return x + self.offset


def _model(*layers):
    return keras.Sequential([keras.Input((3,)), *layers])


class TestPlantedBugs:
    def test_get_config_drops_an_argument(self, tmp_path):
        """A get_config that forgets an argument is named, with the values involved."""
        with pytest.raises(RoundtripError) as info:
            assert_roundtrip(
                _model(DropsArgument(3.0, name="dropper")), tmp_path=tmp_path
            )
        message = str(info.value)
        assert (
            "config: layer 'dropper' (DropsArgument) get_config omits __init__ argument "
            "'scale': the object has scale=3.0 but reloads with the default 1.0"
            in message
        )
        assert "keras: outputs change after reload" in message
        assert "h5: outputs change after reload" in message
        assert set(info.value.problems) == {"config", "keras", "h5"}

    def test_stale_config(self, tmp_path):
        """An attribute changed after __init__ is reported as a stale config."""
        layer = Scales(2.0, name="scales")
        layer.scale = 5.0
        with pytest.raises(RoundtripError) as info:
            assert_roundtrip(_model(layer), tmp_path=tmp_path)
        assert (
            "keras: layer 'scales' stale config: config['scale'] is 2.0 but the "
            "object's scale is 5.0" in str(info.value)
        )

    def test_weight_not_restored(self, tmp_path):
        """A weight that is not restored is named with its largest difference."""
        with pytest.raises(RoundtripError) as info:
            assert_roundtrip(
                _model(ForgetsWeights(name="forgets")),
                tmp_path=tmp_path,
                formats=("keras",),
            )
        message = str(info.value)
        assert "keras: layer 'sequential" in message
        assert "forgets' weight 'kernel' differs: max abs diff" in message
        assert " at [" in message

    def test_non_weight_state_lost(self, tmp_path):
        """State kept in a plain attribute is reported with the fix."""
        layer = Normalizer(name="norm")
        layer.adapt(np.arange(12).reshape(4, 3))
        with pytest.raises(RoundtripError) as info:
            assert_roundtrip(_model(layer), tmp_path=tmp_path)
        message = str(info.value)
        assert "h5: layer 'norm' attribute 'mean' (non-weight state) differs" in message
        assert "serializable.add_state_weight()" in message

    def test_outputs_change(self, tmp_path):
        """Outputs that change after reload are reported with where they differ most."""
        with pytest.raises(
            RoundtripError,
            match=r"keras: outputs change after reload: max abs diff [0-9.]+ at \[\d+, \d+\]",
        ):
            assert_roundtrip(_model(RandomOffset()), tmp_path=tmp_path)

    def test_optimizer_state_lost(self, tmp_path, rng):
        """Legacy .h5 drops optimizer slots: reported, with the library fix and a docs link."""
        model = _model(keras.layers.Dense(2))
        model.compile(optimizer="adam", loss=keras.losses.MeanSquaredError())
        model.fit(rng.normal(size=(8, 3)), rng.normal(size=(8, 2)), verbose=0)
        with pytest.raises(RoundtripError) as info:
            assert_roundtrip(model, tmp_path=tmp_path)
        assert set(info.value.problems) == {"h5"}
        assert (
            "h5: optimizer state lost: 6 optimizer variables saved, 2 after reload"
            in str(info.value)
        )
        message = str(info.value)
        assert "save with serializable.save_model" in message
        assert "using='serializable'" in message
        assert "(P1" not in message and "pitfalls/#optimizer-state-in-h5" in message

    def test_shared_weights_duplicated(self, tmp_path):
        """A layer shared with a sub-model: .h5 duplicates its variables (P11), named."""
        shared = keras.layers.Dense(4, name="shared")
        a = keras.Input((4,))
        inner = keras.Model(a, shared(a), name="inner")
        b = keras.Input((4,))
        model = keras.Model(b, shared(inner(b)))
        with pytest.raises(RoundtripError) as info:
            assert_roundtrip(model, tmp_path=tmp_path)
        message = str(info.value)
        assert (
            "h5: 2 unique variables saved, 4 after reload (shared or tied weights"
            in message
        )
        assert "keras: load failed: ValueError" in message

    def test_loss_setting_lost(self, tmp_path):
        """A loss whose setting is not saved changes its evaluated value (P8 style)."""
        with pytest.raises(
            RoundtripError, match="compiled 'loss' on the same batch: saved"
        ):
            assert_roundtrip(
                ForgetfulLoss(power=4), tmp_path=tmp_path, formats=("keras",)
            )

    def test_class_defined_in_test_function(self, tmp_path):
        """A class that only exists inside the test fails the fresh-process check, named."""

        class LocalOnly(SerializableLayer, package="test_roundtrip_local"):
            def call(self, x):
                return x * 2.0

        model = _model(LocalOnly())
        assert_roundtrip(model, tmp_path=tmp_path / "same")  # same process: passes
        with pytest.raises(RoundtripError) as info:
            assert_roundtrip(
                model,
                tmp_path=tmp_path / "fresh",
                fresh_process=True,
                formats=("keras",),
            )
        message = str(info.value)
        assert (
            "keras: fresh process could not load the file: TypeError: Could not locate class 'LocalOnly'"
            in message
        )
        assert (
            "LocalOnly (registered as 'test_roundtrip_local>LocalOnly') is defined inside a function"
            in message
        )
        assert "Full object config" not in message

    @pytest.mark.slow
    def test_fresh_process_passes_for_importable_classes(self, tmp_path):
        """Classes from an importable module load in a fresh process."""
        model = sequential()
        assert registered_modules(model) == (["tests.test_roundtrip"], [])
        report = assert_roundtrip(
            model, tmp_path=tmp_path, fresh_process=True, formats=("keras",)
        )
        assert "fresh process" in report.formats["keras"].checked


_OTHER_BACKENDS = tuple(
    b for b in ("tensorflow", "jax", "torch") if b != keras.backend.backend()
)


def _installed(backend: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(backend) is not None


class BackendDependent(SerializableLayer, package="test_roundtrip_bugs"):
    """Planted bug: the output depends on which backend runs the model."""

    def call(self, x):
        return x * (2.0 if keras.backend.backend() == "tensorflow" else 3.0)


class TestBackends:
    @pytest.mark.slow
    def test_reloads_under_other_backends(self, tmp_path):
        """Each file reloads in a fresh process under each named backend, same outputs."""
        missing = [b for b in _OTHER_BACKENDS if not _installed(b)]
        if missing:
            pytest.skip(f"backends not installed here: {missing}")
        report = assert_roundtrip(
            sequential(), tmp_path=tmp_path, backends=_OTHER_BACKENDS
        )
        for fmt in ("keras", "h5"):
            for backend in _OTHER_BACKENDS:
                assert f"reload under {backend}" in report.formats[fmt].checked

    @pytest.mark.slow
    def test_backend_dependent_output_is_reported(self, tmp_path):
        """A model whose outputs change with the backend fails, naming the backend."""
        other = "jax" if keras.backend.backend() == "tensorflow" else "tensorflow"
        if not _installed(other):
            pytest.skip(f"{other} is not installed here")
        with pytest.raises(RoundtripError) as info:
            assert_roundtrip(
                _model(BackendDependent()),
                tmp_path=tmp_path,
                formats=("keras",),
                backends=(other,),
            )
        assert f"keras: fresh process under {other} output 0 differs" in str(info.value)

    def test_missing_backend_skips_after_other_checks(self, tmp_path, monkeypatch):
        """A backend that is not installed turns a passing check into a skip that says so."""
        from serializable._roundtrip.api import _BACKEND_PACKAGES
        from serializable.testing import BackendNotInstalled

        monkeypatch.setitem(_BACKEND_PACKAGES, "torch", ("no_such_torch", "torch"))
        with pytest.raises(BackendNotInstalled) as info:
            assert_roundtrip(sequential(), tmp_path=tmp_path, backends=("torch",))
        message = str(info.value)
        assert "passed every check" in message
        assert (
            "not checked under torch: not installed here (pip install torch)" in message
        )
        import unittest

        assert isinstance(info.value, unittest.SkipTest)

    def test_missing_backend_does_not_hide_failures(self, tmp_path, monkeypatch):
        """Problems are still raised as RoundtripError when a backend is missing."""
        from serializable._roundtrip.api import _BACKEND_PACKAGES

        monkeypatch.setitem(_BACKEND_PACKAGES, "torch", ("no_such_torch", "torch"))
        layer = Normalizer(name="norm")
        layer.adapt(np.arange(12).reshape(4, 3))
        with pytest.raises(RoundtripError):
            assert_roundtrip(_model(layer), tmp_path=tmp_path, backends=("torch",))

    def test_unknown_backend_is_refused(self):
        """A misspelt backend is an error that lists the valid names."""
        with pytest.raises(ValueError, match=r"backends=\('tensorflw',\)") as info:
            assert_roundtrip(sequential(), backends=("tensorflw",))
        assert "('tensorflow', 'jax', 'torch')" in str(info.value)


@keras.saving.register_keras_serializable(package="test_roundtrip_bugs")
class ForgetfulLoss(keras.losses.Loss):
    """Planted bug: `power` is not in the config (plain Keras, no library)."""

    def __init__(self, power=2, **kwargs):
        super().__init__(**kwargs)
        self.power = power

    def call(self, y_true, y_pred):
        return keras.ops.mean(keras.ops.abs(y_true - y_pred) ** self.power, axis=-1)


class TestArguments:
    def test_unknown_format(self):
        """An unknown format name is refused with the valid ones."""
        with pytest.raises(ValueError, match=r"Received: formats=\('json',\)"):
            assert_roundtrip(sequential(), formats=("json",))

    def test_unknown_using(self):
        """`using` names the save/load functions; anything else is refused."""
        with pytest.raises(ValueError, match="Received: using='pickle'"):
            assert_roundtrip(sequential(), using="pickle")

    def test_unbuilt_layer_without_inputs(self):
        """An unbuilt layer with no inputs says to call it or pass inputs."""
        with pytest.raises(ValueError, match="Call the layer once, or pass inputs"):
            assert_roundtrip(Block(2))

    def test_not_a_keras_object(self):
        """A non-Keras object is refused with what is accepted."""
        with pytest.raises(TypeError, match="must be a Keras model, layer, loss"):
            assert_roundtrip(object())

    def test_is_an_assertion_error(self):
        """RoundtripError is an AssertionError, so pytest reports it natively."""
        assert issubclass(RoundtripError, AssertionError)
        assert serializable.testing.assert_roundtrip is assert_roundtrip


class TestPytestPlugin:
    def test_fixture_and_fresh_option(self, pytester):
        """The keras_roundtrip fixture works, and --keras-roundtrip-fresh turns on the fresh check."""
        pytester.makepyfile(
            test_user="""
            import keras

            def test_saves(keras_roundtrip):
                model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
                report = keras_roundtrip(model, formats=("keras",))
                print("CHECKED", report.formats["keras"].checked)
            """
        )
        result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider")
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["*CHECKED*'outputs'*"])
        assert "fresh process" not in result.stdout.str()
        result = pytester.runpytest_subprocess(
            "-s", "-p", "no:cacheprovider", "--keras-roundtrip-fresh"
        )
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["*CHECKED*'fresh process'*"])

    def test_marker_turns_on_fresh_check(self, pytester):
        """@pytest.mark.keras_roundtrip_fresh turns the fresh check on for one test."""
        pytester.makepyfile(
            test_marked="""
            import keras
            import pytest

            @pytest.mark.keras_roundtrip_fresh
            def test_saves(keras_roundtrip):
                model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
                report = keras_roundtrip(model, formats=("keras",))
                print("CHECKED", report.formats["keras"].checked)
            """
        )
        result = pytester.runpytest_subprocess(
            "-s", "-p", "no:cacheprovider", "--strict-markers"
        )
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["*CHECKED*'fresh process'*"])

    @pytest.mark.slow
    def test_backends_option(self, pytester):
        """--keras-roundtrip-backends reloads every keras_roundtrip file under those backends."""
        other = "jax" if keras.backend.backend() == "tensorflow" else "tensorflow"
        if not _installed(other):
            pytest.skip(f"{other} is not installed here")
        pytester.makepyfile(
            test_user="""
            import keras

            def test_saves(keras_roundtrip):
                model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
                report = keras_roundtrip(model, formats=("keras",))
                print("CHECKED", report.formats["keras"].checked)
            """
        )
        result = pytester.runpytest_subprocess(
            "-s", "-p", "no:cacheprovider", f"--keras-roundtrip-backends={other}"
        )
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines([f"*CHECKED*'reload under {other}'*"])


class Cubed(serializable.SerializableLoss, package="test_roundtrip_public"):
    def __init__(self, weight=1.0, **kwargs):
        super().__init__(**kwargs)
        self.weight = weight

    def call(self, y_true, y_pred):
        return self.weight * keras.ops.mean(
            keras.ops.abs(y_true - y_pred) ** 3, axis=-1
        )


class Peak(serializable.SerializableMetric, package="test_roundtrip_public"):
    def __init__(self, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.offset = offset
        self.peak = self.add_variable((), initializer="zeros", name="peak")

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.peak.assign(
            keras.ops.maximum(self.peak, keras.ops.max(y_pred) + self.offset)
        )

    def result(self):
        return keras.ops.convert_to_tensor(self.peak)


class Ramp(
    serializable.SerializableLearningRateSchedule, package="test_roundtrip_public"
):
    def __init__(self, start=0.1, slope=0.01):
        self.start = start
        self.slope = slope

    def __call__(self, step):
        return self.start + self.slope * keras.ops.cast(step, "float32")


class Fill(serializable.SerializableInitializer, package="test_roundtrip_public"):
    def __init__(self, value=0.3):
        self.value = value

    def __call__(self, shape, dtype=None):
        return keras.ops.full(shape, self.value, dtype=dtype)


class Penalty(serializable.SerializableRegularizer, package="test_roundtrip_public"):
    def __init__(self, strength=0.1):
        self.strength = strength

    def __call__(self, x):
        return self.strength * keras.ops.sum(keras.ops.square(x))


class Bound(serializable.SerializableConstraint, package="test_roundtrip_public"):
    def __init__(self, limit=0.05):
        self.limit = limit

    def __call__(self, w):
        return keras.ops.clip(w, -self.limit, self.limit)


class TestEveryPublicBaseClass:
    @pytest.mark.parametrize(
        "make",
        [
            lambda: sequential(),
            lambda: subclassed(),
            lambda: Cubed(weight=2.5),
            lambda: Peak(offset=0.5),
            lambda: Ramp(0.2, 0.05),
            lambda: Fill(0.7),
            lambda: Penalty(0.3),
            lambda: Bound(0.01),
        ],
        ids=[
            "SerializableLayer",
            "SerializableModel",
            "SerializableLoss",
            "SerializableMetric",
            "SerializableLearningRateSchedule",
            "SerializableInitializer",
            "SerializableRegularizer",
            "SerializableConstraint",
        ],
    )
    def test_subclass_round_trips(self, make, keras_roundtrip):
        """A subclass of each public base class passes assert_roundtrip in both formats."""
        report = keras_roundtrip(make())
        assert set(report.formats) == {"keras", "h5"}


# ---------------------------------------------------------------------------
# Real models: no crash, no false alarm, every real loss caught
# ---------------------------------------------------------------------------


def _never_trained():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss=keras.losses.MeanSquaredError())
    return model


@keras.saving.register_keras_serializable(package="test_roundtrip_real")
class ChannelsAware(keras.layers.Layer):
    """Hand-written get_config without data_format, which __init__ computes."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = data_format or keras.config.image_data_format()

    def get_config(self):
        return super().get_config()

    def call(self, x):
        return x * 2.0


class NeedsWidth(keras.layers.Layer):
    """No get_config: its parent's hand-written config never serializes it."""

    def __init__(self, width, schedule, **kwargs):
        super().__init__(**kwargs)
        self.schedule = schedule  # any object: Keras cannot auto-config it
        self.dense = keras.layers.Dense(width)

    def build(self, input_shape):
        self.dense.build(input_shape)

    def call(self, x):
        return self.dense(x)


@keras.saving.register_keras_serializable(package="test_roundtrip_real")
class Parent(keras.layers.Layer):
    def __init__(self, width=3, **kwargs):
        super().__init__(**kwargs)
        self.width = width
        self.inner = NeedsWidth(width, schedule=range(width), name="inner")

    def get_config(self):
        return {**super().get_config(), "width": self.width}

    def build(self, input_shape):
        self.inner.build(input_shape)

    def call(self, x):
        return self.inner(x)


class KeepsTuple(keras.layers.Layer):
    """A class whose own get_config returns a tuple, which JSON makes a list."""

    def __init__(self, factors=(1.0, 2.0), **kwargs):
        super().__init__(**kwargs)
        self.factors = factors

    def get_config(self):
        return {**super().get_config(), "factors": self.factors}

    def call(self, x):
        return x * self.factors[0] + self.factors[1]


KerasRegistered = keras.saving.register_keras_serializable(
    package="test_roundtrip_real"
)(type("KerasRegistered", (KeepsTuple,), {}))
LibraryRegistered = serializable.register_keras_serializable(
    package="test_roundtrip_real"
)(type("LibraryRegistered", (KeepsTuple,), {}))


class Noise(SerializableLayer, package="test_roundtrip_real"):
    """Draws from a SeedGenerator in call(), like a VAE's Sampling layer."""

    def __init__(self, seed=3, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed)

    def call(self, x):
        return x + keras.random.normal(keras.ops.shape(x), seed=self.generator)


@keras.saving.register_keras_serializable(package="test_roundtrip_real")
class StepNet(keras.Model):
    """Plain Keras subclass whose train_step calls its layers, not itself."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.first = keras.layers.Dense(4)
        self.second = keras.layers.Dense(1)

    def call(self, x):
        return self.second(self.first(x))

    def train_step(self, data):
        x, y = data
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            with tf.GradientTape() as tape:
                loss = keras.ops.mean((self.second(self.first(x)) - y) ** 2)
            grads = tape.gradient(loss, self.trainable_weights)
        else:  # torch; the test skips JAX
            self.zero_grad()
            loss = keras.ops.mean((self.second(self.first(x)) - y) ** 2)
            loss.backward()
            grads = [v.value.grad for v in self.trainable_weights]
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights, strict=True))
        return {"loss": loss}


class TestRealModels:
    def test_never_trained_compiled_model(self, tmp_path):
        """A compiled, never-trained model: no crash, no false 'optimizer state lost'."""
        model = _never_trained()
        report = assert_roundtrip(model, formats=("keras",), tmp_path=tmp_path / "k")
        assert "training step" in report.formats["keras"].checked
        assert_roundtrip(model, using="serializable", tmp_path=tmp_path / "s")
        assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 0

    def test_never_trained_default_call_does_not_crash(self, tmp_path):
        """Both formats with plain Keras: .keras passes; anything .h5 reports is real and names the fix."""
        try:
            assert_roundtrip(_never_trained(), tmp_path=tmp_path)
        except RoundtripError as err:
            assert set(err.problems) == {"h5"}, str(err)
            assert "using='serializable'" in str(err)

    def test_ctc_model_compiled_with_only_an_optimizer(self, tmp_path, rng):
        """A CTCLayer model compiled with just an optimizer, never fit, checks cleanly."""
        from serializable.ctc import CTCLayer

        frames = keras.Input((6, 4), name="frames")
        labels = keras.Input((2,), dtype="int32", name="labels")
        y_pred = keras.layers.Dense(5)(frames)
        model = keras.Model([frames, labels], CTCLayer()(y_pred, labels))
        model.compile(optimizer="adam")
        inputs = [
            rng.normal(size=(2, 6, 4)).astype("float32"),
            np.array([[1, 2], [3, -1]], "int32"),
        ]
        assert_roundtrip(model, inputs, using="serializable", tmp_path=tmp_path)

    def test_bidirectional_build_config_is_not_a_false_alarm(self, tmp_path):
        """Keras turns build_config input shapes into lists: not reported."""
        model = keras.Sequential(
            [keras.Input((5, 3)), keras.layers.Bidirectional(keras.layers.LSTM(2))]
        )
        assert_roundtrip(model, tmp_path=tmp_path)

    @pytest.mark.parametrize("cls", [KerasRegistered, LibraryRegistered])
    def test_registered_class_with_its_own_get_config(self, cls, tmp_path):
        """A tuple in a registered class's own get_config: compared as without the library."""
        assert_roundtrip(_model(cls((0.5, 1.0))), tmp_path=tmp_path)

    def test_computed_default_is_not_a_false_alarm(self, tmp_path):
        """data_format=None turned into image_data_format() reloads the same: not reported."""
        assert_roundtrip(_model(ChannelsAware(name="aware")), tmp_path=tmp_path)

    def test_sublayer_no_config_serializes_is_not_a_false_alarm(self, tmp_path):
        """A sublayer with no usable get_config, rebuilt by its parent, is not reported."""
        assert_roundtrip(_model(Parent(3)), tmp_path=tmp_path)

    def test_seed_generator_state(self, tmp_path):
        """A used SeedGenerator: outputs compared from the same seed state, the Keras limit noted."""
        model = _model(Noise(name="noise"))
        x = np.ones((2, 3), "float32")
        model(x)
        model(x)
        report = assert_roundtrip(model, x, tmp_path=tmp_path)
        note = report.formats["keras"].notes[0]
        assert "random seed state of 'noise/" in note
        assert "not saved by Keras (keras.random.SeedGenerator)" in note
        assert "note: random seed state" in str(report)

    def test_unbuilt_after_custom_training_is_caught(self, tmp_path, rng):
        """fit() that never calls the model leaves it unbuilt: the check sees the file the user's save writes."""
        if keras.backend.backend() == "jax":
            pytest.skip("the custom train_step is written for tf and torch")
        model = StepNet()
        model.compile(optimizer="sgd")
        x = rng.normal(size=(8, 3)).astype("float32")
        model.fit(x, np.ones((8, 1), "float32"), verbose=0)
        if model.built:
            pytest.skip(f"fit() builds the model on {keras.backend.backend()}")
        with pytest.raises(RoundtripError) as info:
            assert_roundtrip(model, x[:4], formats=("keras",), tmp_path=tmp_path)
        message = str(info.value)
        assert "4 unique variables saved, 0 after reload" in message
        assert "saved unbuilt" in message
        assert "shared or tied" not in message

    def test_deprecation_warnings_while_saving_are_not_failures(
        self, tmp_path, monkeypatch
    ):
        """Under -W error, a DeprecationWarning raised while saving is not 'save failed'."""
        import warnings

        original = keras.layers.Dense.get_config

        def deprecated_get_config(self):
            warnings.warn("old Keras path", DeprecationWarning, stacklevel=1)
            return original(self)

        monkeypatch.setattr(keras.layers.Dense, "get_config", deprecated_get_config)
        with warnings.catch_warnings():
            # As `-W error` would for this warning (torch's own numpy
            # deprecations elsewhere are not what this test is about).
            warnings.filterwarnings("error", message="old Keras path")
            assert_roundtrip(_model(keras.layers.Dense(2)), tmp_path=tmp_path)

    def test_messages_cite_no_internal_ids(self, tmp_path, rng):
        """Messages link to the docs instead of citing pitfall ids; .keras advice never says 'use .keras'."""
        shared = keras.layers.Dense(4, name="shared")
        a = keras.Input((4,))
        inner = keras.Model(a, shared(a), name="inner")
        b = keras.Input((4,))
        model = keras.Model(b, shared(inner(b)))
        with pytest.raises(serializable.FormatLimitError) as info:
            serializable.save_model(model, tmp_path / "shared.h5")
        assert "(P" not in str(info.value)
        assert "pitfalls/#shared-layers-tied-weights" in str(info.value)

        trained = _model(keras.layers.Dense(2))
        trained.compile(optimizer="adam", loss="mse")
        trained.fit(rng.normal(size=(8, 3)), rng.normal(size=(8, 2)), verbose=0)
        with pytest.raises(RoundtripError) as info:
            assert_roundtrip(trained, tmp_path=tmp_path / "plain")
        message = str(info.value)
        assert "(P" not in message
        assert "h5: load failed" in message
        assert "serializable.load_model" in message  # it reads this file

    def test_verify_names_missing_weights(self):
        """compare_models (save_model(verify=True)) does not call missing weights shared or tied."""
        from serializable._compare import compare_models

        built = Net(4)
        built(np.zeros((1, 3), "float32"))
        problems = compare_models(built, Net(4))
        assert any("0 after reload" in p and "saved unbuilt" in p for p in problems)
        assert not any("shared or tied" in p for p in problems)


class TestFreshProcess:
    @pytest.mark.slow
    def test_dict_inputs(self, tmp_path):
        """A model fed a dict of arrays reloads in a fresh process (no pickled inputs)."""
        a = keras.Input((3,), name="a")
        b = keras.Input((2,), name="b")
        merged = keras.layers.Concatenate()([a, b])
        model = keras.Model({"a": a, "b": b}, Block(2)(merged))
        inputs = synthesize_inputs(model)
        assert isinstance(inputs, dict)
        assert_roundtrip(
            model, inputs, fresh_process=True, formats=("keras",), tmp_path=tmp_path
        )

    @pytest.mark.slow
    def test_third_party_class_registered_elsewhere(self, tmp_path):
        """README way 3: the new process imports the module that registered the class."""
        from .corpus import registrations  # registers TheirScale

        model = _model(registrations.TheirScale((2.0, 0.5)))
        modules, unimportable = registered_modules(model)
        assert "tests.corpus.registrations" in modules and not unimportable
        assert_roundtrip(
            model, fresh_process=True, formats=("keras",), tmp_path=tmp_path
        )
