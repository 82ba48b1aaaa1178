"""Shared fixtures: the save formats every round-trip test runs in."""

from __future__ import annotations

import json
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from pathlib import Path

import keras
import numpy as np
import pytest

FORMATS = ("keras", "h5")


@pytest.fixture(params=FORMATS)
def fmt(request: pytest.FixtureRequest) -> str:
    """Each save format in turn: the native `.keras` zip and legacy `.h5`."""
    return request.param


@pytest.fixture
def reload(tmp_path: Path, fmt: str):
    """Save a model in the current format and load it back with plain Keras.

    No `custom_objects` is ever passed: registration alone must be enough.
    """

    def _reload(model: keras.Model, **load_kwargs) -> keras.Model:
        path = tmp_path / f"model.{fmt}"
        model.save(path)
        return keras.models.load_model(path, **load_kwargs)

    return _reload


@pytest.fixture
def assert_same_weights():
    """Check two models hold the same weights: names, shapes, order and values."""

    def _check(a, b) -> None:
        wa, wb = a.weights, b.weights
        assert len(wa) == len(wb)
        for x, y in zip(wa, wb, strict=True):
            assert x.name == y.name
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=x.path)

    return _check


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def compiled():
    """`compiled(fn, jit_compile)`: `fn` compiled the way Keras compiles a step.

    TensorFlow: `tf.function`, with XLA when `jit_compile`; JAX: `jax.jit`
    (Keras runs JAX eagerly when not compiling with XLA). Keras runs torch
    eagerly (`jit_compile="auto"` is eager there), so there is no symbolic
    trace to check on torch: the eager tests cover it, and this skips.
    """

    def _compiled(fn, jit_compile):
        backend = keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            return tf.function(fn, jit_compile=jit_compile, autograph=False)
        if backend == "jax":
            if not jit_compile:
                pytest.skip(
                    "JAX compiles only with XLA (jax.jit); jit_compile=False is eager"
                )
            import jax

            return jax.jit(fn)
        pytest.skip(
            f"Keras runs the {backend!r} backend eagerly: nothing symbolic to check"
        )

    return _compiled


# ---------------------------------------------------------------------------
# The README's compatibility table: what the `compat`-marked tests showed
# ---------------------------------------------------------------------------

_COMPAT: dict[tuple[str, str], list[tuple[str, str]]] = {}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    marker = item.get_closest_marker("compat")
    if marker is not None and (report.when == "call" or not report.passed):
        params = getattr(item, "callspec", None)
        fmt = params.params.get("fmt", "any") if params is not None else "any"
        reason = ""
        if report.skipped and isinstance(report.longrepr, tuple):
            reason = str(report.longrepr[2]).removeprefix("Skipped: ")
        _COMPAT.setdefault((marker.args[0], fmt), []).append((report.outcome, reason))
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write this backend's results where `dev.py` builds the table from them."""
    folder = os.environ.get("SERIALIZABLE_COMPAT_DIR")
    if not folder or not _COMPAT:
        return
    cells = []
    for (feature, fmt), outcomes in _COMPAT.items():
        if any(outcome == "failed" for outcome, _ in outcomes):
            result, reason = "failed", ""
        elif any(outcome == "passed" for outcome, _ in outcomes):
            result, reason = "passed", ""
        else:
            result, reason = "skipped", outcomes[0][1]
        cells.append(
            {"feature": feature, "format": fmt, "result": result, "reason": reason}
        )
    path = Path(folder) / f"{keras.backend.backend()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        # The whole suite ran: no paths, -k or -m narrowed it.
        "complete": session.config.args_source == pytest.Config.ArgsSource.TESTPATHS
        and not session.config.option.keyword
        and not session.config.option.markexpr,
        "cells": cells,
    }
    path.write_text(json.dumps(payload, indent=1) + "\n")
