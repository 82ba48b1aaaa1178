"""`assert_roundtrip` itself: check the arguments, save, check, give the verdict.

Every format is saved first; then each is checked (`check.py`), and every
problem found goes into one `RoundtripError`, grouped by format.
"""

from __future__ import annotations

import os
import tempfile
import unittest
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._compare import (
    _ORIGINAL_CONFIGS,
    _check_config_completeness,
    _layers,
    _predict,
    _safe_config,
    synthesize_inputs,
)
from .._errors import RoundtripError
from .check import _check_format, _save
from .probe import _as_model
from .report import FormatReport, RoundtripReport
from .settings import Run, Settings
from .snapshot import _Snapshot

__all__ = ["BackendNotInstalled", "assert_roundtrip"]


FORMATS = ("keras", "h5")


def assert_roundtrip(
    obj: Any,
    inputs: Any = None,
    *,
    targets: Any = None,
    formats: Sequence[str] = FORMATS,
    atol: float = 1e-6,
    rtol: float = 1e-6,
    fresh_process: bool = False,
    check_training: bool | None = None,
    tmp_path: str | os.PathLike[str] | None = None,
    seed: int = 0,
    using: str = "keras",
    backends: Sequence[str] = (),
) -> RoundtripReport:
    """Save `obj` in each format, reload it, and check that nothing was lost.

    Args:
        obj: A Functional, Sequential or subclassed model; a single layer
            (wrapped in a model); or a loss, metric, initializer, regularizer,
            constraint, learning-rate schedule or optimizer (embedded in a
            small compiled model so both formats apply).
        inputs: A batch to compare outputs on. Synthesized from the model's
            input specs (seeded, dtype-aware) when None.
        targets: Targets for the compile-state and training checks. Derived
            from the model's own outputs when None.
        formats: Which formats to check: any of `"keras"` and `"h5"`.
        atol: Absolute tolerance for outputs and loss/metric values.
        rtol: Relative tolerance for outputs and loss/metric values.
        fresh_process: Also reload each file in a new Python process that
            imports only the modules the saved classes were registered from,
            catching classes that load only because the test defined them.
        check_training: Run one identical training step on the original and
            the reloaded model and compare the weights. Defaults to True for
            compiled models. The original's weights and optimizer state are
            put back afterwards.
        tmp_path: Directory for the files. A temporary one when None.
        seed: Seed for synthesized inputs and targets.
        using: `"keras"` saves with `model.save` and loads with
            `keras.models.load_model`, as most code does; `"serializable"`
            uses `serializable.save_model`/`load_model` (with their `.h5`
            repairs), to check files written that way.
        backends: Keras backends (`"tensorflow"`, `"jax"`, `"torch"`) to
            reload each file under, each in a fresh process, comparing the
            outputs with the original's (within `atol`/`rtol`, but no tighter
            than 1e-5 absolute and 1e-4 relative, or 1e-2 for float16 and
            bfloat16 outputs: backends use different kernels). The current
            backend may be named too. Backends that are not installed are
            left out; once everything else has passed, the call then raises
            `BackendNotInstalled`, a `unittest.SkipTest` that pytest and
            unittest report as a skip naming what was and was not checked.

    Returns:
        A `RoundtripReport`: per format, file size, save and load time, and
        the list of checks that ran.

    Raises:
        RoundtripError: If anything differs; the message lists every problem,
            grouped by format.
        ValueError: If `formats` names an unknown format or `backends` an
            unknown backend.
        BackendNotInstalled: If a backend in `backends` is not installed
            (only when nothing else failed).

    Example:

    ```python
    import keras
    from serializable import assert_roundtrip

    def test_my_model_saves(tmp_path):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        assert_roundtrip(model, tmp_path=tmp_path)
    ```
    """
    if using not in ("keras", "serializable"):
        message = (
            "assert_roundtrip argument 'using' must be 'keras' or 'serializable'. "
            f"Received: using={using!r}. Pass using='serializable' to check "
            "save_model/load_model."
        )
        raise ValueError(message)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        message = (
            f"assert_roundtrip argument 'formats' must name save formats: expected "
            f"a non-empty subset of {FORMATS}. Received: formats={tuple(formats)!r}. "
            "Pass formats=('keras',) or formats=('keras', 'h5')."
        )
        raise ValueError(message)
    installed, missing = _split_backends(backends)
    settings = Settings(
        atol=atol,
        rtol=rtol,
        fresh_process=fresh_process,
        check_training=check_training,
        using=using,
        backends=installed,
    )
    model, kind = _as_model(obj, inputs)
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(tmp_path) if tmp_path is not None else Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        # Every file is written first, before the checker calls, builds or
        # trains anything: it must hold the model exactly as the user's own
        # save would see it (an unbuilt model stays unbuilt).
        reports = {
            fmt: FormatReport(fmt, str(directory / f"roundtrip_{model.name}.{fmt}"))
            for fmt in formats
        }
        for report in reports.values():
            _save(model, Path(report.path), report, settings.using)
        state = _Snapshot(model)
        try:
            # Configs as the files hold them: before the model is called.
            originals = {id(o): (o, _safe_config(o)) for o in [model, *_layers(model)]}
            if inputs is None:
                inputs = synthesize_inputs(model, rng)
            expected = _predict(model, inputs)
            state.reset_seeds(model)
            token = _ORIGINAL_CONFIGS.set(originals)
            try:
                run = Run(model, kind, inputs, expected, targets, rng, state, settings)
                result = _run_formats(obj, run, reports)
            finally:
                _ORIGINAL_CONFIGS.reset(token)
        finally:
            state.reset_seeds(model)
    if missing:
        checked = ", ".join(installed) or "no other backend"
        raise BackendNotInstalled(
            f"assert_roundtrip: {_describe(obj)} passed every check, reloaded "
            f"under {checked}; not checked under {', '.join(missing)}: not "
            "installed here ("
            + "; ".join(f"pip install {_BACKEND_PACKAGES[b][1]}" for b in missing)
            + ")"
        )
    return result


# Backend name -> (module to find, what to pip install).
_BACKEND_PACKAGES = {
    "tensorflow": ("tensorflow", "tensorflow"),
    "jax": ("jax", "jax"),
    "torch": ("torch", "torch"),
}


class BackendNotInstalled(unittest.SkipTest):
    """`assert_roundtrip(..., backends=...)` named a backend not installed here.

    Raised only after every other check passed. It is a `unittest.SkipTest`,
    so pytest and unittest report the test as skipped, with this message.
    """


def _split_backends(backends: Sequence[str]) -> tuple[tuple[str, ...], list[str]]:
    if isinstance(backends, str):
        backends = (backends,)
    unknown = [b for b in backends if b not in _BACKEND_PACKAGES]
    if unknown:
        message = (
            "assert_roundtrip argument 'backends' must name Keras backends: "
            f"expected any of {tuple(_BACKEND_PACKAGES)}. Received: "
            f"backends={tuple(backends)!r}. Pass e.g. backends=('jax', 'torch')."
        )
        raise ValueError(message)
    import importlib.util

    installed = tuple(
        b for b in backends if importlib.util.find_spec(_BACKEND_PACKAGES[b][0])
    )
    return installed, [b for b in backends if b not in installed]


def _run_formats(
    obj: Any, run: Run, reports: dict[str, FormatReport]
) -> RoundtripReport:
    restored_models = []
    for report in reports.values():
        restored = _check_format(run, report)
        if restored is not None:
            restored_models.append(restored)
    problems = {fmt: r.problems for fmt, r in reports.items() if r.problems}
    incomplete: list[str] = []
    _check_config_completeness(run.model, restored_models, incomplete)
    if incomplete:
        problems = {"config": incomplete, **problems}
    if problems:
        lines = [f"{_describe(obj)} did not survive a save/reload round trip:"]
        for fmt, items in problems.items():
            lines.extend(f"  {fmt}: {item}" for item in items)
        raise RoundtripError("\n".join(lines), problems)
    return RoundtripReport(reports)


def _describe(obj: Any) -> str:
    name = getattr(obj, "name", None)
    label = f" '{name}'" if isinstance(name, str) else ""
    return f"{type(obj).__name__}{label}"
