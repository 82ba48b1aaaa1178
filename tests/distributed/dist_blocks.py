"""Custom building blocks and checks shared by the distributed scripts.

Imported by `mirrored.py` (TensorFlow, `tf.distribute.MirroredStrategy`) and
`data_parallel.py` (JAX, `keras.distribution.DataParallel`) *after* they have
configured two devices; never imported by pytest itself (the test runs each
script in a fresh interpreter, see tests/test_distribution.py).

Everything here is backend-neutral: the scripts pass in what differs, namely
how to make the distribution (`fresh`) and how to read a variable's copy on
each device (`per_device`).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import keras
import numpy as np

import serializable
from serializable.ctc import CTCLayer

# A warning from Keras or from us ("Skipping variable loading for optimizer",
# a layer marked built without weights) is a failure here, as in pytest.
warnings.simplefilter("error", UserWarning)
warnings.simplefilter("error", RuntimeWarning)

BATCH = 8  # divisible by the 2 devices: each gets 4 samples
FEATURES = 6
TIME, CLASSES, LABEL_LEN = 12, 5, 4
FORMATS = ("keras", "h5")

# ---------------------------------------------------------------------------
# The custom building blocks
# ---------------------------------------------------------------------------


class Gated(serializable.SerializableLayer, package="dist_tests"):
    """A `SerializableLayer` with a nested layer and an initializer argument."""

    def __init__(
        self,
        inner: keras.layers.Layer,
        gate_initializer: keras.initializers.Initializer | str = "zeros",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.inner = inner
        self.gate_initializer = keras.initializers.get(gate_initializer)

    def build(self, input_shape: Any) -> None:
        self.inner.build(input_shape)
        units = self.inner.compute_output_shape(input_shape)[-1]
        self.gate = self.add_weight(
            shape=(units,), initializer=self.gate_initializer, name="gate"
        )

    def call(self, x: Any) -> Any:
        return self.inner(x) * keras.ops.sigmoid(self.gate)


@serializable.register_keras_serializable(package="dist_tests")
class ScaleShift(keras.layers.Layer):
    """A plain Keras layer registered with the library's decorator."""

    def __init__(self, offset: float = 0.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.offset = offset

    def build(self, input_shape: Any) -> None:
        self.scale = self.add_weight(
            shape=(input_shape[-1],), initializer="ones", name="scale"
        )

    def call(self, x: Any) -> Any:
        return x * self.scale + self.offset


class Tagger(serializable.SerializableModel, package="dist_tests"):
    """A subclassed `SerializableModel` built from the blocks above."""

    def __init__(self, units: int = 8, outputs: int = 3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = units
        self.outputs = outputs
        self.body = Gated(
            keras.layers.Dense(units, activation="tanh"),
            gate_initializer=keras.initializers.Constant(0.3),
            name="gated",
        )
        self.shift = ScaleShift(0.25, name="shift")
        self.head = keras.layers.Dense(outputs, name="head")

    def call(self, x: Any) -> Any:
        return self.head(self.shift(self.body(x)))


def build_tagger() -> keras.Model:
    """The subclassed model, built and compiled with Adam and an MSE loss."""
    model = Tagger(units=8, outputs=3, name="tagger")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="mse")
    return model


def build_ctc() -> keras.Model:
    """A Functional CTC training model: Gated + ScaleShift + `CTCLayer`."""
    frames = keras.Input((TIME, FEATURES), name="frames")
    labels = keras.Input((LABEL_LEN,), dtype="int32", name="labels")
    hidden = Gated(keras.layers.Dense(16, activation="relu"), name="ctc_gated")(frames)
    hidden = ScaleShift(0.1, name="ctc_shift")(hidden)
    logits = keras.layers.Dense(CLASSES, name="logits")(hidden)
    outputs = CTCLayer(blank_index=-1, name="ctc")(logits, labels)
    model = keras.Model([frames, labels], outputs, name="ctc_train")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01))
    return model


def tagger_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH, FEATURES)).astype("float32")
    y = rng.normal(size=(BATCH, 3)).astype("float32")
    return x, y


def ctc_data() -> tuple[list[np.ndarray], None]:
    rng = np.random.default_rng(1)
    frames = rng.normal(size=(BATCH, TIME, FEATURES)).astype("float32")
    labels = np.full((BATCH, LABEL_LEN), -1, dtype="int32")
    for row in range(BATCH):
        length = 2 + row % 3  # 2..4 labels, padded with -1
        labels[row, :length] = rng.integers(0, CLASSES - 1, size=length)
    return [frames, labels], None


MODELS: dict[str, tuple[Callable[[], keras.Model], Callable[[], Any]]] = {
    "tagger": (build_tagger, tagger_data),
    "ctc": (build_ctc, ctc_data),
}

# Whether `run` saves the model inside the distribution's scope or after it.
SAVE_INSIDE = {"tagger": True, "ctc": False}

# ---------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------


def numpy(variable: Any) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(variable))


def snapshot(model: keras.Model, x: Any) -> dict[str, Any]:
    """What must survive: predictions, weights and optimizer state, by value."""
    optimizer = model.optimizer
    return {
        "predictions": numpy(model(x, training=False)),
        "weights": named_values(model.weights),
        "iterations": int(numpy(optimizer.iterations)),
        "optimizer": named_values(optimizer.variables),
    }


def named_values(variables: list[Any]) -> list[tuple[str, np.ndarray]]:
    """Each variable's name and value, in order.

    Compared by position, not by path: a reloaded subclassed model's variable
    paths (and so its optimizer slots' names) need not repeat the original's.
    """
    return [(v.name, numpy(v)) for v in variables]


def _kind(name: str) -> str:
    """`kernel`, `gate`; an optimizer slot's kind (`momentum`, `velocity`).

    A slot is named after its variable's path, which a reload may change.
    """
    return name.rpartition("_")[2]


def train_step(model: keras.Model, x: Any, y: Any) -> list[tuple[str, np.ndarray]]:
    """One training step; the weights after it."""
    model.train_on_batch(x, y)
    return named_values(model.weights)


def assert_same_state(
    label: str, expected: dict[str, Any], model: keras.Model, x: Any
) -> None:
    got = snapshot(model, x)
    np.testing.assert_allclose(
        got["predictions"],
        expected["predictions"],
        rtol=1e-5,
        atol=1e-6,
        err_msg=f"{label}: predictions",
    )
    _assert_same_arrays(f"{label}: weights", expected["weights"], got["weights"], 0)
    if got["iterations"] != expected["iterations"]:
        message = (
            f"{label}: optimizer iterations saved {expected['iterations']}, "
            f"reloaded {got['iterations']}"
        )
        raise AssertionError(message)
    _assert_same_arrays(
        f"{label}: optimizer state", expected["optimizer"], got["optimizer"], 0
    )


def assert_same_weights(
    label: str,
    expected: list[tuple[str, np.ndarray]],
    got: list[tuple[str, np.ndarray]],
) -> None:
    """After one more training step: equal up to float reduction order."""
    _assert_same_arrays(label, expected, got, 1e-5)


def _assert_same_arrays(
    label: str,
    expected: list[tuple[str, np.ndarray]],
    got: list[tuple[str, np.ndarray]],
    tolerance: float,
) -> None:
    names = [_kind(name) for name, _ in expected]
    if names != [_kind(name) for name, _ in got]:
        message = (
            f"{label}: variables {[name for name, _ in expected]}, "
            f"got {[name for name, _ in got]}"
        )
        raise AssertionError(message)
    for index, ((name, value), (_, other)) in enumerate(
        zip(expected, got, strict=True)
    ):
        np.testing.assert_allclose(
            other,
            value,
            rtol=tolerance,
            atol=tolerance,
            err_msg=f"{label}: variable {index} ({name})",
        )


class Distribution(Protocol):
    """What the scripts pass in: a strategy or a Keras distribution."""

    def scope(self) -> contextlib.AbstractContextManager[Any]: ...


def run(
    name: str,
    directory: Path,
    fresh: Callable[[], Distribution],
    per_device: Callable[[Any], list[np.ndarray]],
    *,
    sharded: bool = False,
    tag: str = "",
) -> Iterator[str]:
    """Build, train, save and reload one model; yield a line per passed check.

    `fresh()` makes a new `MirroredStrategy` / `DataParallel` / `ModelParallel`
    over the two devices. `per_device(variable)` lists the variable's value on
    each device holding it: two equal copies for a variable replicated by the
    distribution, two halves for one it shards (some must be when `sharded`),
    one value for a variable created outside it. So the test cannot pass on a
    single device, nor with a replica left stale by a load. `tag` prefixes the
    lines and the file names when a model runs under several distributions.
    """
    build, data = MODELS[name]
    x, y = data()
    label = f"{tag}{name}"
    distribution = fresh()
    with distribution.scope():
        model = build()
        model.fit(x, y, batch_size=BATCH, epochs=3, verbose=0)
    saved = snapshot(model, x)
    if saved["iterations"] != 3:
        message = f"{label}: 3 training steps ran, iterations={saved['iterations']}"
        raise AssertionError(message)
    _assert_placement(f"{label} original", model, per_device, 2, sharded)
    yield f"{label}: trained under the distribution, every variable on 2 devices"

    # Saved where user code saves: in the scope (a checkpoint in the training
    # loop) for one model, after it for the other.
    saving = distribution.scope if SAVE_INSIDE[name] else contextlib.nullcontext
    with saving():
        paths = {
            suffix: serializable.save_model(
                model, directory / f"{tag}{name}.{suffix}", verify=True
            )
            for suffix in FORMATS
        }
    where_saved = "inside" if SAVE_INSIDE[name] else "outside"
    yield f"{label}: saved (verified) .keras and .h5 {where_saved} the distribution"

    # The reference for "training resumes exactly": one more step from the
    # original, in its own distribution, after the files were written.
    with distribution.scope():
        after_step = train_step(model, x, y)
    _assert_changed(f"{label}: one more step", saved["weights"], after_step)

    for suffix, path in paths.items():
        for where in ("inside", "outside"):
            check = f"{label} {suffix} {where}"
            inside = where == "inside"
            scope = fresh().scope if inside else contextlib.nullcontext
            with scope():
                restored = serializable.load_model(path)
                copies = 2 if inside else 1
                _assert_placement(
                    check, restored, per_device, copies, sharded and inside
                )
                assert_same_state(check, saved, restored, x)
                resumed = train_step(restored, x, y)
            assert_same_weights(f"{check}: one more step", after_step, resumed)
            yield f"{check}: same predictions, weights, optimizer state, next step"


def _assert_placement(
    label: str,
    model: keras.Model,
    per_device: Callable[[Any], list[np.ndarray]],
    copies: int,
    sharded: bool,
) -> None:
    """Every weight and optimizer variable on `copies` devices: equal copies,
    or (only where `sharded`, and then for some weights and slots) shards."""
    optimizer = model.optimizer
    if len(optimizer.variables) <= 2:  # iterations and learning rate only
        message = f"{label}: the optimizer has no slot variables"
        raise AssertionError(message)
    split = {"weights": 0, "optimizer": 0}
    for kind, variables in (
        ("weights", model.weights),
        ("optimizer", optimizer.variables),
    ):
        for variable in variables:
            values = per_device(variable)
            if len(values) != copies:
                message = (
                    f"{label}: expected '{variable.path}' on {copies} device(s). "
                    f"Received: {len(values)}"
                )
                raise AssertionError(message)
            if any(v.shape != tuple(variable.shape) for v in values):
                split[kind] += 1
                continue
            for index, value in enumerate(values[1:], start=1):
                np.testing.assert_array_equal(
                    value,
                    values[0],
                    err_msg=f"{label}: '{variable.path}' differs on device {index}",
                )
    if sharded and not all(split.values()):
        message = f"{label}: expected sharded weights and slots. Received: {split}"
        raise AssertionError(message)
    if not sharded and any(split.values()):
        message = f"{label}: expected no sharded variable. Received: {split}"
        raise AssertionError(message)


def _assert_changed(
    label: str,
    before: list[tuple[str, np.ndarray]],
    after: list[tuple[str, np.ndarray]],
) -> None:
    """A training step that changes nothing would make the resume check vacuous."""
    unchanged = [
        name
        for (name, x), (_, y) in zip(before, after, strict=True)
        if np.array_equal(x, y)
    ]
    if unchanged:
        message = f"{label} left weights unchanged: {unchanged}"
        raise AssertionError(message)


def roundtrip(
    name: str, directory: Path, fresh: Callable[[], Distribution]
) -> Iterator[str]:
    """`serializable.assert_roundtrip` on a model trained under the distribution.

    Called inside the distribution, so the reloaded models are distributed
    too and its training-step check runs on both devices.
    """
    build, data = MODELS[name]
    x, y = data()
    with fresh().scope():
        model = build()
        model.fit(x, y, batch_size=BATCH, epochs=2, verbose=0)
        # model.save to .h5 keeps no optimizer slots (P15) and cannot reload
        # loss="mse" (P7): plain Keras's .h5 is checked by the library's own
        # tests; here .keras with Keras's functions, both formats with ours.
        for using, formats in (("keras", ("keras",)), ("serializable", FORMATS)):
            report = serializable.assert_roundtrip(
                model,
                x,
                targets=y,
                formats=formats,
                tmp_path=directory / f"roundtrip_{name}_{using}",
                using=using,
            )
            for fmt, format_report in report.formats.items():
                checked = ", ".join(format_report.checked)
                yield f"{name} assert_roundtrip using={using} {fmt}: {checked}"
