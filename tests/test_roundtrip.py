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
        with pytest.warns(
            UserWarning, match="Skipping nested container"
        ):  # Keras's own
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
        from serializable._roundtrip import _BACKEND_PACKAGES
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
        from serializable._roundtrip import _BACKEND_PACKAGES

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
