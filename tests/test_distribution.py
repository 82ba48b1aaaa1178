"""Models trained under a distribution strategy save and reload (issue #6).

The distributed tests run a script from tests/distributed/ in a fresh
interpreter: two logical TensorFlow CPU devices, or `XLA_FLAGS` asking JAX for
two host devices, can only be configured before the backend initialises. Each
script trains a `SerializableModel` subclass (a `SerializableLayer` with a
nested layer and an initializer argument, a layer registered with
`register_keras_serializable`) and a `CTCLayer` training model on both
devices, saves them to `.keras` and `.h5`, reloads each file inside the
distribution and outside it, and checks predictions, weights, optimizer state
and the next training step; then `assert_roundtrip` on the distributed model.
It prints one `PASS` line per check; this test requires every expected line.

`MirroredStrategy` runs when the backend is TensorFlow, `DataParallel` when it
is JAX: CI runs the suite once per backend, so each runs exactly once.

The other tests pin the `assert_roundtrip` bugs the distributed runs found.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import serializable
from serializable import SerializableLayer, SerializableModel, assert_roundtrip

SCRIPTS = Path(__file__).resolve().parent / "distributed"
MODELS = ("tagger", "ctc")
SAVED_INSIDE = {"tagger": True, "ctc": False}
ROUNDTRIP_CHECKS = {
    "class",
    "config",
    "weights",
    "outputs",
    "compile state",
    "optimizer state",
    "training step",
}


def _reload_lines(model: str, tag: str = "") -> list[str]:
    """What `dist_blocks.run` prints: trained, saved, four verified reloads."""
    where_saved = "inside" if SAVED_INSIDE[model] else "outside"
    lines = [
        f"{tag}{model}: trained under the distribution, every variable on 2 devices",
        f"{tag}{model}: saved (verified) .keras and .h5 {where_saved} the distribution",
    ]
    for fmt in ("keras", "h5"):
        for where in ("inside", "outside"):
            lines.append(
                f"{tag}{model} {fmt} {where}: same predictions, weights, "
                "optimizer state, next step"
            )
    return lines


def _roundtrip_lines(model: str) -> list[str]:
    """What `dist_blocks.roundtrip` prints, up to the list of checks that ran."""
    return [
        f"{model} assert_roundtrip using={using} {fmt}: "
        for using, fmt in (
            ("keras", "keras"),
            ("serializable", "keras"),
            ("serializable", "h5"),
        )
    ]


EXPECTED = [line for m in MODELS for line in _reload_lines(m) + _roundtrip_lines(m)]


def _run_script(
    script: str, backend: str, package: str, tmp_path: Path, expected: list[str]
) -> None:
    current = keras.backend.backend()
    if current != backend:
        # One wording per script, whatever the current backend: the README's
        # compatibility table footnotes it.
        pytest.skip(
            f"{script} runs on the {backend} backend only (CI runs the suite "
            "once per backend)"
        )
    pytest.importorskip(package, reason=f"{script} needs {package} installed")
    # The child imports the same serializable as this process (a worktree or
    # an editable install), whatever the current directory.
    source = str(Path(serializable.__file__).resolve().parents[1])
    pythonpath = [
        source,
        *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep)),
    ]
    env = {
        **os.environ,
        "KERAS_BACKEND": backend,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONPATH": os.pathsep.join(pythonpath),
    }
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / script), str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    output = result.stdout + result.stderr[-6000:]
    assert result.returncode == 0, output
    passed = [
        line[5:] for line in result.stdout.splitlines() if line.startswith("PASS ")
    ]
    # assert_roundtrip lines end with the checks it ran; these must be among them.
    checks = [line.partition(": ")[2] for line in passed if "assert_roundtrip" in line]
    passed = [
        line if "assert_roundtrip" not in line else line.partition(": ")[0] + ": "
        for line in passed
    ]
    assert passed == expected, output
    for ran in checks:
        missing = ROUNDTRIP_CHECKS - set(ran.split(", "))
        assert not missing, f"assert_roundtrip skipped {missing}:\n{output}"
    assert result.stdout.splitlines()[-1] == "DONE", output
    for model in MODELS:  # the files are real and where the script says
        for fmt in ("keras", "h5"):
            assert (tmp_path / f"{model}.{fmt}").stat().st_size > 0


@pytest.mark.slow
@pytest.mark.compat(
    "tf.distribute.MirroredStrategy (2 devices): trained, reloaded in and out of scope"
)
def test_mirrored_strategy_two_cpus(tmp_path):
    """MirroredStrategy on two logical CPUs: both formats reload inside and outside the scope, optimizer state and training resume exactly."""
    _run_script("mirrored.py", "tensorflow", "tensorflow", tmp_path, EXPECTED)


@pytest.mark.slow
@pytest.mark.compat(
    "keras.distribution DataParallel/ModelParallel (2 devices): trained, reloaded "
    "with and without"
)
def test_jax_data_parallel_two_host_devices(tmp_path):
    """keras.distribution.DataParallel (and ModelParallel) on two JAX host devices: both formats reload with and without the distribution, optimizer state and training resume exactly."""
    # Then the subclassed model again under ModelParallel, its inner Dense
    # kernel and that kernel's Adam slots sharded over the two devices.
    sharded = _reload_lines("tagger", tag="sharded ")
    _run_script("data_parallel.py", "jax", "jax", tmp_path, EXPECTED + sharded)


# ---------------------------------------------------------------------------
# assert_roundtrip bugs found by the distributed runs (in process, fast)
# ---------------------------------------------------------------------------


class Wrapped(SerializableLayer, package="test_distribution"):
    """Wraps a layer passed in, like `Gated(Dense(8))`."""

    def __init__(self, inner, **kwargs):
        super().__init__(**kwargs)
        self.inner = inner

    def call(self, x):
        return self.inner(x)


class TwoBlocks(SerializableModel, package="test_distribution"):
    """A subclassed model that makes an unnamed Dense in __init__ and wraps it."""

    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.block = Wrapped(keras.layers.Dense(units))
        self.head = keras.layers.Dense(2)

    def call(self, x):
        return self.head(self.block(x))


def _trained_two_blocks() -> tuple[keras.Model, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 4)).astype("float32")
    y = rng.normal(size=(8, 2)).astype("float32")
    model = TwoBlocks()
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    return model, x, y


def test_roundtrip_accepts_renumbered_nested_layer_names(tmp_path):
    """A Dense made in a model's __init__ and passed to a child is renumbered on reload ('dense' -> 'dense_1'); that is not a lost setting."""
    model, x, y = _trained_two_blocks()
    report = assert_roundtrip(
        model, x, targets=y, formats=("keras",), tmp_path=tmp_path
    )
    assert "optimizer state" in report.formats["keras"].checked


def test_roundtrip_compares_slots_of_subclassed_models(tmp_path):
    """Optimizer slots are compared even when a reloaded subclassed model's variable paths, and so its slot names, differ from the original's."""
    from serializable._roundtrip import training

    model, x, _ = _trained_two_blocks()
    path = serializable.save_model(model, tmp_path / "model.keras")
    restored = serializable.load_model(path)
    slots = [v.path for v in restored.optimizer.variables]
    assert slots != [v.path for v in model.optimizer.variables]  # what broke it
    problems: list[str] = []
    training._check_optimizer(model, restored, problems)
    assert problems == []

    last = restored.optimizer.variables[-1]  # the head bias's second moment
    last.assign(np.asarray(keras.ops.convert_to_numpy(last)) + 1.0)
    training._check_optimizer(model, restored, problems)
    assert len(problems) == 1, problems
    assert "optimizer variable" in problems[0] and "differs" in problems[0]
    assert model.optimizer.variables[-1].path in problems[0]


def test_roundtrip_reads_iterations_of_mirrored_optimizer(tmp_path):
    """assert_roundtrip on a model under MirroredStrategy reads its optimizer's iterations (int() of a MirroredVariable raised TypeError)."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.distribute needs KERAS_BACKEND=tensorflow")
    tf = pytest.importorskip("tensorflow")
    # One device is enough to make MirroredVariables; two need a fresh process.
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    x = np.ones((4, 3), "float32")
    with strategy.scope():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        model.compile(optimizer="adam", loss="mse")
        model.fit(x, np.zeros((4, 2), "float32"), verbose=0)
        assert isinstance(
            model.optimizer.iterations.value, tf.distribute.DistributedValues
        )
        report = assert_roundtrip(model, x, formats=("keras",), tmp_path=tmp_path)
    assert "optimizer state" in report.formats["keras"].checked
