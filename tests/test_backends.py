"""Every public building block on the current backend, and files from the others.

`TestBlocks` round-trips each building block through both formats on the
backend the suite runs on (`KERAS_BACKEND`). `TestCrossBackend` loads files
that the *other* backends wrote: a fresh process per other backend builds
every block, trains the compiled ones a step, saves both formats with
`serializable.save_model` and records inputs, outputs and weights; this
process loads each file and compares. Run on each backend, the suite covers
every (saved under, loaded under) pair.

Both feed the README's compatibility table through the `compat` marker.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

import serializable
from serializable import SerializableLayer, SerializableModel, assert_roundtrip
from serializable.ctc import CTCDecoder, CTCLayer

BACKEND = keras.backend.backend()
BACKENDS = ("tensorflow", "jax", "torch")
PACKAGE = "test_backends"


# ---------------------------------------------------------------------------
# The building blocks, one builder each: (model, inputs, targets or None)
# ---------------------------------------------------------------------------


@serializable.register_keras_serializable(package=PACKAGE)
class Scaled(keras.layers.Layer):
    """A plain Keras layer registered with the decorator; numpy and tuple args."""

    def __init__(self, table=None, dims=(4,), **kwargs):
        super().__init__(**kwargs)
        self.table = np.ones(4, "float32") if table is None else table
        self.dims = dims

    def call(self, x):
        return x * keras.ops.convert_to_tensor(self.table, dtype=self.compute_dtype)


class Gated(SerializableLayer, package=PACKAGE):
    """A nested layer and an initializer as constructor arguments."""

    def __init__(self, inner, gate_initializer="ones", **kwargs):
        super().__init__(**kwargs)
        self.inner = inner
        self.gate_initializer = keras.initializers.get(gate_initializer)

    def build(self, input_shape):
        self.inner.build(input_shape)
        self.gate = self.add_weight(
            shape=(self.inner.units,), initializer=self.gate_initializer
        )

    def call(self, x):
        return keras.ops.sigmoid(self.gate) * self.inner(x)


class Tower(SerializableModel, package=PACKAGE):
    """A subclassed model with its own constructor arguments."""

    def __init__(self, width=8, depth=2, **kwargs):
        super().__init__(**kwargs)
        self.width = width
        self.depth = depth
        self.blocks = [
            keras.layers.Dense(width, activation="tanh") for _ in range(depth)
        ]
        self.head = keras.layers.Dense(3)

    def call(self, x):
        for block in self.blocks:
            x = block(x)
        return self.head(x)


class Residual(SerializableModel, package=PACKAGE):
    """A Functional subclass: builds its graph in __init__ from its arguments."""

    def __init__(self, units=4, **kwargs):
        inputs = keras.Input((4,))
        outputs = inputs + keras.layers.Dense(units)(inputs)
        super().__init__(inputs, outputs, **kwargs)
        self.units = units


class PowerLoss(serializable.SerializableLoss, package=PACKAGE):
    def __init__(self, power=3, **kwargs):
        super().__init__(**kwargs)
        self.power = power

    def call(self, y_true, y_pred):
        return keras.ops.mean(keras.ops.abs(y_true - y_pred) ** self.power, axis=-1)


class AboveThreshold(serializable.SerializableMetric, package=PACKAGE):
    def __init__(self, threshold=0.1, **kwargs):
        super().__init__(**kwargs)
        self.threshold = threshold
        self.hits = self.add_variable((), initializer="zeros", name="hits")

    def update_state(self, y_true, y_pred, sample_weight=None):
        hits = keras.ops.cast(y_pred > self.threshold, "float32")
        self.hits.assign_add(keras.ops.sum(hits))

    def result(self):
        return keras.ops.convert_to_tensor(self.hits)


class Warmup(serializable.SerializableLearningRateSchedule, package=PACKAGE):
    def __init__(self, peak=1e-2, steps=10):
        self.peak = peak
        self.steps = steps

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        return self.peak * keras.ops.minimum(1.0, (step + 1.0) / self.steps)


def _rng() -> np.random.Generator:
    return np.random.default_rng(7)


def _functional(*layers: keras.layers.Layer, shape=(4,)) -> keras.Model:
    inputs = keras.Input(shape)
    x = inputs
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, x)


def build_registered():
    model = _functional(Scaled(np.arange(4, dtype="float32"), name="scaled"))
    return model, _rng().normal(size=(3, 4)).astype("float32"), None


def build_nested():
    layer = Gated(keras.layers.Dense(3), keras.initializers.RandomNormal(seed=1))
    return _functional(layer), _rng().normal(size=(3, 4)).astype("float32"), None


def build_subclassed():
    model = Tower(width=6, depth=2, name="tower")
    x = _rng().normal(size=(3, 4)).astype("float32")
    model(x)
    return model, x, None


def build_functional_subclass():
    return Residual(units=4), _rng().normal(size=(3, 4)).astype("float32"), None


def build_compiled():
    model = _functional(Gated(keras.layers.Dense(2)))
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=Warmup(peak=0.05, steps=4)),
        loss=PowerLoss(power=2),
        metrics=[AboveThreshold(threshold=0.2)],
    )
    rng = _rng()
    x = rng.normal(size=(8, 4)).astype("float32")
    y = rng.normal(size=(8, 2)).astype("float32")
    return model, x, y


def _mixed(policy: str):
    def build():
        with _policy(policy):
            model = _functional(Gated(keras.layers.Dense(3)), Scaled(np.ones(3, "f4")))
        model.compile(
            optimizer=keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam())
            if policy == "mixed_float16"
            else keras.optimizers.Adam(),
            loss="mse",
        )
        rng = _rng()
        x = rng.normal(size=(8, 4)).astype("float32")
        return model, x, rng.normal(size=(8, 3)).astype("float32")

    return build


@contextlib.contextmanager
def _policy(name: str) -> Iterator[None]:
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


T, C, L = 12, 6, 4


def build_ctc_training():
    frames = keras.Input((T, 5), name="frames")
    labels = keras.Input((L,), dtype="int32", name="labels")
    y_pred = keras.layers.Dense(C, name="logits")(frames)
    outputs = CTCLayer(blank_index=-1, zero_infinity=True, name="ctc")(y_pred, labels)
    model = keras.Model([frames, labels], outputs)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01))
    rng = _rng()
    x = rng.normal(size=(4, T, 5)).astype("float32")
    y = rng.integers(0, C - 1, size=(4, L)).astype("int32")
    y[1, 2:] = -1  # a shorter label, padded
    return model, [x, y], None


def _ctc_inference(strategy: str):
    def build():
        frames = keras.Input((T, 5))
        logits = keras.layers.Dense(C)(frames)
        decoded = CTCDecoder(strategy=strategy, beam_width=4, blank_index=-1)(logits)
        model = keras.Model(frames, decoded)
        return model, _rng().normal(size=(4, T, 5)).astype("float32"), None

    return build


# feature name (the README's row) -> builder
BLOCKS: dict[str, Callable[[], tuple[keras.Model, Any, Any]]] = {
    "Registered layer (decorator), numpy and tuple arguments": build_registered,
    "SerializableLayer with a nested layer and an initializer": build_nested,
    "SerializableModel (subclassed)": build_subclassed,
    "SerializableModel (Functional subclass)": build_functional_subclass,
    "Custom loss, metric and LR schedule; optimizer state; training resumes": (
        build_compiled
    ),
    "mixed_float16 policy and LossScaleOptimizer": _mixed("mixed_float16"),
    "mixed_bfloat16 policy": _mixed("mixed_bfloat16"),
    "CTCLayer training model": build_ctc_training,
    "CTCDecoder inference model (greedy)": _ctc_inference("greedy"),
    "CTCDecoder inference model (beam search)": _ctc_inference("beam_search"),
}
# Beam search: TensorFlow's native decoder and the NumPy one may rank equal
# paths differently (docs/ctc.md), so files are compared across backends on
# the greedy decoder; beam search is round-tripped on each backend.
CROSS_BACKEND = [name for name in BLOCKS if "beam search" not in name]


def _train_one_step(model: keras.Model, x: Any, y: Any) -> None:
    """One optimizer step (every batch here has at most 8 samples)."""
    if model.compiled:
        model.fit(x, y, epochs=1, batch_size=8, verbose=0)


# ---------------------------------------------------------------------------
# Each block on this backend
# ---------------------------------------------------------------------------


class TestBlocks:
    @pytest.mark.parametrize(
        "feature", [pytest.param(f, marks=pytest.mark.compat(f)) for f in BLOCKS]
    )
    def test_round_trips(self, feature, fmt, tmp_path):
        """The block saves and reloads intact: config, weights, outputs, optimizer."""
        model, x, y = BLOCKS[feature]()
        _train_one_step(model, x, y)
        assert_roundtrip(
            model, x, targets=y, formats=(fmt,), tmp_path=tmp_path, using="serializable"
        )


# ---------------------------------------------------------------------------
# Files written under the other backends
# ---------------------------------------------------------------------------

_SAVER = r"""
import json, sys
sys.path[:0] = json.loads(sys.argv[2])
import numpy as np
import keras
from serializable import save_model
from tests import test_backends as blocks

out = sys.argv[1]
index = {}
for i, feature in enumerate(blocks.CROSS_BACKEND):
    model, x, y = blocks.BLOCKS[feature]()
    blocks._train_one_step(model, x, y)
    arrays = x if isinstance(x, list) else [x]
    outputs = [keras.ops.convert_to_numpy(o)
               for o in keras.tree.flatten(model(x, training=False))]
    low = any(o.dtype.itemsize <= 2 and o.dtype.kind not in "biu" for o in outputs)
    np.savez(f"{out}/{i}.npz",
             *[np.asarray(a) for a in arrays],
             *[o.astype("float32") if low else o for o in outputs],
             *[keras.ops.convert_to_numpy(w) for w in model.weights])
    slots = model.optimizer.variables if model.compiled else []
    np.savez(f"{out}/{i}.optimizer.npz",
             *[keras.ops.convert_to_numpy(v) for v in slots])
    for fmt in ("keras", "h5"):
        save_model(model, f"{out}/{i}.{fmt}")
    index[feature] = {"file": i, "inputs": len(arrays), "outputs": len(outputs),
                      "low_precision": low}
with open(f"{out}/index.json", "w") as f:
    json.dump({"backend": keras.backend.backend(), "blocks": index}, f)
"""

_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def saved_under(tmp_path_factory) -> Callable[[str], Path]:
    """`saved_under(backend)`: the folder of files that backend wrote, made once."""
    made: dict[str, Path] = {}

    def _get(backend: str) -> Path:
        if backend not in made:
            out = tmp_path_factory.mktemp(f"saved_under_{backend}")
            env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
            path = [str(_ROOT), *[p for p in sys.path if p]]
            result = subprocess.run(
                [sys.executable, "-c", _SAVER, str(out), json.dumps(path)],
                capture_output=True,
                text=True,
                env=env,
                timeout=600,
            )
            assert result.returncode == 0, result.stderr[-3000:]
            made[backend] = out
        return made[backend]

    return _get


def _close(a: np.ndarray, b: np.ndarray, low_precision: bool) -> bool:
    """Equal within what different kernels give: float32, or float16/bfloat16."""
    if low_precision:
        b = b.astype("float32")
        return a.shape == b.shape and np.allclose(a, b, atol=2e-2, rtol=2e-2)
    return a.shape == b.shape and np.allclose(a, b, atol=1e-5, rtol=1e-4)


class TestCrossBackend:
    @pytest.mark.slow
    @pytest.mark.parametrize("feature", CROSS_BACKEND)
    @pytest.mark.parametrize(
        "source",
        [
            pytest.param(b, marks=pytest.mark.compat(f"Reloads files saved under {b}"))
            for b in BACKENDS
            if b != BACKEND
        ],
    )
    def test_loads_file_saved_under_other_backend(
        self, source, feature, fmt, saved_under
    ):
        """A file saved under another backend reloads here with its weights and outputs."""
        if importlib.util.find_spec(source) is None:
            pytest.skip(f"{source} is not installed here")
        folder = saved_under(source)
        info = json.loads((folder / "index.json").read_text())
        assert info["backend"] == source
        entry = info["blocks"][feature]
        with np.load(folder / f"{entry['file']}.npz", allow_pickle=False) as data:
            arrays = [data[f"arr_{i}"] for i in range(len(data.files))]
        n_in, n_out = entry["inputs"], entry["outputs"]
        inputs, outputs, weights = (
            arrays[:n_in],
            arrays[n_in : n_in + n_out],
            arrays[n_in + n_out :],
        )

        model = serializable.load_model(folder / f"{entry['file']}.{fmt}")

        assert len(model.weights) == len(weights)
        for variable, saved in zip(model.weights, weights, strict=True):
            np.testing.assert_array_equal(
                keras.ops.convert_to_numpy(variable), saved, err_msg=variable.path
            )
        got = keras.tree.flatten(
            model(inputs if n_in > 1 else inputs[0], training=False)
        )
        for a, b in zip(outputs, got, strict=True):
            b = keras.ops.convert_to_numpy(b)
            assert _close(a, b, entry["low_precision"]), np.max(
                np.abs(a - b.astype(a.dtype))
            )
        # Optimizer state, by value: training resumes where it stopped. (Not
        # `iterations == 1`: under mixed_float16 the first step may overflow
        # and be skipped by the loss-scale optimizer.)
        with np.load(folder / f"{entry['file']}.optimizer.npz") as saved_slots:
            slots = [saved_slots[f"arr_{i}"] for i in range(len(saved_slots.files))]
        restored = model.optimizer.variables if model.compiled else []
        assert len(slots) > 1 or not model.compiled  # iterations + Adam's slots
        assert len(restored) == len(slots)
        for variable, saved in zip(restored, slots, strict=True):
            np.testing.assert_array_equal(
                keras.ops.convert_to_numpy(variable), saved, err_msg=variable.path
            )
