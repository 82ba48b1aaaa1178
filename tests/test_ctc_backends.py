"""CTC on every installed backend: the same numbers from TensorFlow, JAX and torch.

One fresh process per backend (`KERAS_BACKEND=...`) computes the loss, its
gradient, greedy and beam-search decodes on fixed seeded inputs, including an
impossible alignment and an empty label, and saves them; the test compares
every pair of backends. It starts the other backends itself, so it runs once
per CI, on the TensorFlow leg.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

import serializable

BACKENDS = ("tensorflow", "jax", "torch")

SCRIPT = r"""
import sys

import keras
import numpy as np

from serializable.ctc import ctc_decode, ctc_loss

backend = keras.backend.backend()
assert backend == sys.argv[2], (backend, sys.argv[2])


def loss_and_gradient(fn, x):
    if backend == "tensorflow":
        import tensorflow as tf

        variable = tf.Variable(x)
        with tf.GradientTape() as tape:
            loss = fn(variable)
            total = tf.reduce_sum(loss)
        return loss.numpy(), tape.gradient(total, variable).numpy()
    if backend == "jax":
        import jax

        loss, pullback = jax.vjp(fn, jax.numpy.asarray(x))
        return np.asarray(loss), np.asarray(pullback(jax.numpy.ones_like(loss))[0])
    import torch

    variable = torch.tensor(x, requires_grad=True)
    loss = fn(variable)
    loss.sum().backward()
    return loss.detach().numpy(), variable.grad.numpy()


rng = np.random.default_rng(1234)
B, T, C, L = 8, 16, 6, 5
logits = rng.normal(size=(B, T, C)).astype("float32") * 2.0
labels = np.full((B, L), -1, dtype="int32")
label_length = rng.integers(1, L + 1, size=B)
for i, n in enumerate(label_length):
    labels[i, :n] = rng.integers(1, C, size=n)
input_length = rng.integers(11, T + 1, size=B)
labels[0] = [2, 2, 2, 3, 3]  # needs 5 + 3 frames: impossible in 6
input_length[0] = 6
labels[1] = -1  # the empty label: all blanks
label_length[0], label_length[1] = 5, 0
blank_last = np.where(labels > 0, labels - 1, labels)  # classes 0..4, blank 5

out = {}
for name, y_pred, target, kwargs in (
    ("logits", logits, labels, {"blank_index": 0}),
    (
        "probs",
        np.exp(logits) / np.exp(logits).sum(-1, keepdims=True),
        blank_last,
        {"blank_index": -1, "from_logits": False},
    ),
):
    loss, grad = loss_and_gradient(
        lambda x: ctc_loss(target, x, input_length, zero_infinity=True, **kwargs),
        y_pred,
    )
    out[f"loss_{name}"], out[f"grad_{name}"] = loss, grad
try:
    ctc_loss(labels, logits, input_length)
    out["impossible_refused"] = np.array(False)
except ValueError as err:
    out["impossible_refused"] = np.array("sample 0 cannot be aligned" in str(err))

lengths = input_length.copy()
lengths[2] = 0
for name, strategy, width, top, implementation in (
    ("greedy", "greedy", 1, 1, "auto"),
    ("beam", "beam_search", 4, 3, "auto"),  # TensorFlow's own on TensorFlow
    ("beam_numpy", "beam_search", 4, 3, "numpy"),
):
    paths, scores = ctc_decode(
        logits, lengths, strategy=strategy, beam_width=width, top_paths=top,
        blank_index=-1, implementation=implementation,
    )
    out[f"{name}_paths"] = keras.ops.convert_to_numpy(paths)
    out[f"{name}_scores"] = keras.ops.convert_to_numpy(scores)
# An exhaustive beam (every prefix of 3 classes over 5 frames fits): every
# decoder, TensorFlow's native one included, must find the exact answer.
small = rng.normal(size=(4, 5, 3)).astype("float32")
paths, scores = ctc_decode(
    small, [5, 4, 1, 0], strategy="beam_search", beam_width=64, top_paths=4
)
out["exhaustive_paths"] = keras.ops.convert_to_numpy(paths)
out["exhaustive_scores"] = keras.ops.convert_to_numpy(scores)
np.savez(sys.argv[1], **out)
"""


def missing(backend: str) -> str | None:
    """Why `backend` cannot run here, or None when its package is importable."""
    if importlib.util.find_spec(backend) is None:
        return f"{backend} is not installed, so its backend cannot be compared"
    return None


_results: dict[str, dict[str, np.ndarray]] = {}


def results_of(backend: str, directory: pathlib.Path) -> dict[str, np.ndarray]:
    """Run the script in a fresh process on `backend` (once) and load its output."""
    if backend not in _results:
        path = directory / f"{backend}.npz"
        src = str(pathlib.Path(serializable.__file__).parents[1])
        env = {
            **os.environ,
            "KERAS_BACKEND": backend,
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "PYTHONPATH": os.pathsep.join(
                [src, *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
        }
        result = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(path), backend],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
        )
        assert result.returncode == 0, f"{backend}:\n{result.stderr[-3000:]}"
        with np.load(path) as data:
            _results[backend] = dict(data)
    return _results[backend]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return tmp_path_factory.mktemp("ctc_backends")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("first", "second"),
    [("tensorflow", "jax"), ("tensorflow", "torch"), ("jax", "torch")],
)
def test_backends_agree(workdir, first, second):
    """Loss, gradient and decodes agree between two backends; impossible rows give 0."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip(
            "starts every backend in its own process, so it runs once per CI: "
            "on the tensorflow leg"
        )
    for backend in (first, second):
        reason = missing(backend)
        if reason:
            pytest.skip(reason)
    a, b = results_of(first, workdir), results_of(second, workdir)
    assert sorted(a) == sorted(b)
    for name in ("logits", "probs"):
        loss_a, loss_b = a[f"loss_{name}"], b[f"loss_{name}"]
        grad_a, grad_b = a[f"grad_{name}"], b[f"grad_{name}"]
        # Row 0 is impossible: zero loss and gradient; row 1 (empty) is finite.
        for loss, grad in ((loss_a, grad_a), (loss_b, grad_b)):
            assert loss[0] == 0.0 and np.all(grad[0] == 0.0)
            assert np.all(np.isfinite(loss)) and np.all(loss[1:] > 0.0)
            assert np.all(np.isfinite(grad)) and np.any(grad[1] != 0.0)
        np.testing.assert_allclose(loss_a, loss_b, rtol=1e-4, err_msg=name)
        np.testing.assert_allclose(grad_a, grad_b, rtol=1e-3, atol=1e-5, err_msg=name)
    assert a["impossible_refused"] and b["impossible_refused"]
    decoders = ["greedy", "beam_numpy", "exhaustive"]
    if "tensorflow" not in (first, second):
        # A narrow beam is approximate, and TensorFlow's native decoder prunes
        # differently from the prefix beam search (docs/ctc.md): compare it
        # only where both backends run the same decoder.
        decoders.append("beam")
    for name in decoders:
        np.testing.assert_array_equal(
            a[f"{name}_paths"], b[f"{name}_paths"], err_msg=name
        )
        np.testing.assert_allclose(
            a[f"{name}_scores"], b[f"{name}_scores"], rtol=1e-4, err_msg=name
        )
    # The row with no frames decodes to nothing, with probability 1.
    assert np.all(a["greedy_paths"][0, 2] == -1) and a["greedy_scores"][2, 0] == 0.0
