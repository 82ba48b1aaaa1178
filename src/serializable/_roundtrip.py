"""`assert_roundtrip`: save, reload, and prove nothing was lost.

Every format is saved first, before the object is called, built or trained,
so each file holds what the user's own save would write. Each is then loaded
back with plain `keras.models.load_model` (no `custom_objects`), and compared
with the original: class, config (key by key; tuples told apart from lists
where the library generated the config), every weight by path, the number of
unique variables, outputs, compile state (loss and metric values on one
batch, not just their configs), optimizer state, and one identical training
step. Every problem found is collected and
reported at once, grouped by format, in a message a person can act on.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from . import _keras_compat
from ._compare import (
    _ORIGINAL_CONFIGS,
    _build_shapes,
    _check_class,
    _check_config_completeness,
    _check_configs,
    _check_weights,
    _compare_outputs,
    _diff_config,
    _difference,
    _layers,
    _max_diff,
    _numpy,
    _predict,
    _safe_config,
    _weight_label,
    synthesize_inputs,
)
from ._errors import RoundtripError, docs_url, innermost

__all__ = ["FormatReport", "RoundtripError", "RoundtripReport", "assert_roundtrip"]


FORMATS = ("keras", "h5")


@dataclass
class FormatReport:
    """What happened in one format: sizes, timings and what was checked.

    `notes` holds what is worth knowing but lost nothing: warnings Keras gave
    while saving or loading, and random-seed state Keras does not save.
    """

    format: str
    path: str
    file_bytes: int = 0
    save_seconds: float = 0.0
    load_seconds: float = 0.0
    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class RoundtripReport:
    """The result of a passing `assert_roundtrip`, one entry per format."""

    formats: dict[str, FormatReport]

    def __str__(self) -> str:
        lines = []
        for report in self.formats.values():
            lines.append(
                f"{report.format}: {report.file_bytes / 1024:.1f} KiB, save "
                f"{report.save_seconds * 1000:.0f} ms, load "
                f"{report.load_seconds * 1000:.0f} ms; checked "
                + ", ".join(report.checked)
            )
            lines.extend(f"  note: {note}" for note in report.notes)
        return "\n".join(lines)


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
            _save(model, Path(report.path), report, using)
        state = _Snapshot.take(model)
        try:
            # Configs as the files hold them: before the model is called.
            originals = {id(o): (o, _safe_config(o)) for o in [model, *_layers(model)]}
            if inputs is None:
                inputs = synthesize_inputs(model, rng)
            expected = _predict(model, inputs)
            state.reset_seeds(model)
            token = _ORIGINAL_CONFIGS.set(originals)
            try:
                result = _run_formats(
                    obj,
                    model,
                    kind,
                    reports,
                    inputs,
                    expected,
                    targets,
                    rng,
                    state,
                    atol=atol,
                    rtol=rtol,
                    fresh_process=fresh_process,
                    check_training=check_training,
                    using=using,
                    backends=installed,
                )
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
    obj: Any,
    model: keras.Model,
    kind: str,
    reports: dict[str, FormatReport],
    inputs: Any,
    expected: Any,
    targets: Any,
    rng: np.random.Generator,
    state: _Snapshot,
    *,
    atol: float,
    rtol: float,
    fresh_process: bool,
    check_training: bool | None,
    using: str,
    backends: Sequence[str] = (),
) -> RoundtripReport:
    restored_models = []
    for report in reports.values():
        restored = _check_format(
            model,
            kind,
            report,
            inputs,
            expected,
            targets,
            rng,
            state,
            atol=atol,
            rtol=rtol,
            fresh_process=fresh_process,
            check_training=check_training,
            using=using,
            backends=backends,
        )
        if restored is not None:
            restored_models.append(restored)
    problems = {fmt: r.problems for fmt, r in reports.items() if r.problems}
    incomplete: list[str] = []
    _check_config_completeness(model, restored_models, incomplete)
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


def _as_model(obj: Any, inputs: Any) -> tuple[keras.Model, str]:
    if isinstance(obj, keras.Model):
        return obj, "model"
    if isinstance(obj, keras.layers.Layer):
        return _wrap_layer(obj, inputs), "layer"
    schedules = keras.optimizers.schedules.LearningRateSchedule
    if isinstance(obj, keras.optimizers.Optimizer):
        return _probe_model(optimizer=obj), "optimizer"
    if isinstance(obj, schedules):
        return _probe_model(
            optimizer=keras.optimizers.SGD(learning_rate=obj)
        ), "schedule"
    if isinstance(obj, keras.losses.Loss) or (callable(obj) and _is_function(obj)):
        return _probe_model(loss=obj), "loss"
    if isinstance(obj, keras.metrics.Metric):
        return _probe_model(metrics=[obj]), "metric"
    if isinstance(obj, keras.initializers.Initializer):
        return _probe_model(kernel_initializer=obj), "initializer"
    if isinstance(obj, keras.regularizers.Regularizer):
        return _probe_model(kernel_regularizer=obj), "regularizer"
    if isinstance(obj, keras.constraints.Constraint):
        return _probe_model(kernel_constraint=obj), "constraint"
    message = (
        "assert_roundtrip argument 'obj' must be a Keras model, layer, loss, "
        "metric, initializer, regularizer, constraint, learning-rate schedule or "
        f"optimizer. Received: obj={obj!r} (type {type(obj).__name__}). Pass the "
        "object itself, or a model that uses it."
    )
    raise TypeError(message)


def _is_function(obj: Any) -> bool:
    import types

    return isinstance(obj, types.FunctionType)


def _wrap_layer(layer: keras.layers.Layer, inputs: Any) -> keras.Model:
    if inputs is not None:
        arrays = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        specs = [
            keras.Input(np.shape(a)[1:], dtype=str(np.asarray(a).dtype)) for a in arrays
        ]
    else:
        shapes = _build_shapes(layer)
        if shapes is None:
            message = (
                f"assert_roundtrip cannot wrap layer '{layer.name}' in a model: "
                "expected a built layer or example `inputs`. Received: an unbuilt "
                f"{type(layer).__name__} and inputs=None. Call the layer once, or "
                "pass inputs=..."
            )
            raise ValueError(message)
        specs = [keras.Input(shape[1:]) for shape in shapes]
    outputs = layer(*specs)
    return keras.Model(
        specs if len(specs) > 1 else specs[0], outputs, name=f"{layer.name}_probe"
    )


def _probe_model(
    loss: Any = "mean_squared_error",
    metrics: list[Any] | None = None,
    optimizer: Any = None,
    **dense_kwargs: Any,
) -> keras.Model:
    inputs = keras.Input((4,), name="probe_input")
    outputs = keras.layers.Dense(3, name="probe_dense", **dense_kwargs)(inputs)
    model = keras.Model(inputs, outputs, name="probe")
    if loss == "mean_squared_error":
        loss = keras.losses.MeanSquaredError()
    model.compile(
        # Plain SGD has no slots, so a legacy .h5 file can hold its whole state
        # and only the object under test decides the outcome.
        optimizer=optimizer if optimizer is not None else keras.optimizers.SGD(1e-2),
        loss=loss,
        metrics=metrics or [],
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 4)).astype("float32")
    y = rng.uniform(size=(8, 3)).astype("float32")
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)  # creates optimizer state
    return model


@contextlib.contextmanager
def _quiet_deprecations(notes: list[str] | None = None) -> Any:
    """Warnings while saving or loading are not failures.

    Under `pytest -W error` (or `filterwarnings = error`) Keras's own
    DeprecationWarnings would be raised as exceptions and reported as a failed
    save or load. Deprecations are dropped; other warnings (Keras's "saving a
    model that has not yet been built") go to `notes`, while the checks
    themselves find whatever the file lost.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for warning in caught:
        if issubclass(
            warning.category, (DeprecationWarning, PendingDeprecationWarning)
        ):
            continue
        text = f"{warning.category.__name__}: {str(warning.message).strip()}"
        if notes is not None and text not in notes:
            notes.append(text)


def _save(model: keras.Model, path: Path, report: FormatReport, using: str) -> None:
    start = time.perf_counter()
    try:
        with _quiet_deprecations(report.notes):
            if using == "serializable":
                from ._files import save_model

                save_model(model, path)
            else:
                with _keras_compat.keep_compile_config(model):
                    model.save(path)
    except Exception as err:  # a save failure is a finding, not a crash
        report.problems.append(f"save failed: {innermost(err)}")
        return
    report.save_seconds = time.perf_counter() - start
    report.file_bytes = path.stat().st_size


def _load(path: Path, report: FormatReport, using: str) -> keras.Model | None:
    start = time.perf_counter()
    try:
        with _quiet_deprecations(report.notes):
            if using == "serializable":
                from ._files import load_model

                restored = load_model(path)
            else:
                restored = keras.models.load_model(path)
    except Exception as err:
        problem = f"load failed: {innermost(err)}"
        if using == "keras" and report.format == "h5":
            if _serializable_loads(path):
                problem += (
                    "; serializable.load_model reads this file (it repairs what "
                    "plain Keras cannot load from .h5): load it with "
                    "serializable.load_model, or save with serializable.save_model "
                    "and check with assert_roundtrip(..., using='serializable')"
                )
            else:
                problem += (
                    "; serializable.save_model writes .h5 files that record what "
                    "plain Keras's .h5 loses: save with it and check with "
                    "assert_roundtrip(..., using='serializable')"
                )
        report.problems.append(problem)
        return None
    report.load_seconds = time.perf_counter() - start
    return restored


def _serializable_loads(path: Path) -> bool:
    try:
        from ._files import load_model

        with _quiet_deprecations(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            load_model(path)
    except Exception:
        return False
    return True


class _Snapshot:
    """The original's optimizer and random-seed state, taken after saving.

    The compile-state and training checks use the original model; they are
    compared with what the files hold, and everything is put back after.
    """

    def __init__(self, model: keras.Model) -> None:
        optimizer = getattr(model, "optimizer", None) if model.compiled else None
        self.optimizer_built = bool(optimizer is not None and optimizer.built)
        self.iterations = (
            int(_numpy(optimizer.iterations)) if optimizer is not None else 0
        )
        self.optimizer_values = (
            [_numpy(v).copy() for v in optimizer.variables]
            if optimizer is not None and self.optimizer_built
            else []
        )
        self.seeds = [(v, _numpy(v).copy()) for v in _seed_states(model)]

    @classmethod
    def take(cls, model: keras.Model) -> _Snapshot:
        return cls(model)

    def reset_seeds(self, model: keras.Model, *others: keras.Model) -> None:
        """Put the original's seed state back, and give `others` the same."""
        for variable, value in self.seeds:
            variable.assign(value)
        for other in others:
            theirs = _seed_states(other)
            if len(theirs) == len(self.seeds):
                for (_, value), variable in zip(self.seeds, theirs, strict=True):
                    if tuple(variable.shape) == value.shape:
                        variable.assign(value)

    def align_seeds(self, restored: keras.Model, report: FormatReport) -> None:
        """Start the reload's random draws where the original's stood.

        Keras saves no `keras.random.SeedGenerator` state: a reloaded layer
        draws from its initial seed again. That is a known Keras limit, not a
        loss of anything learned; it is noted in the report, and the outputs
        are compared from the same random state.
        """
        theirs = _seed_states(restored)
        if len(theirs) != len(self.seeds):
            return
        differ = []
        owners = _seed_owners(restored)
        for (_, value), other in zip(self.seeds, theirs, strict=True):
            if tuple(other.shape) != value.shape:
                return
            if not np.array_equal(_numpy(other), value):
                differ.append(owners.get(id(other), other.path))
            other.assign(value)
        if differ:
            report.notes.append(
                "random seed state of "
                + ", ".join(f"'{p}'" for p in differ)
                + " is not saved by Keras (keras.random.SeedGenerator): after "
                "reload random draws restart from the initial seed. Outputs were "
                "compared from the same seed state; reseed after loading if the "
                "draws must continue"
            )


def _seed_owners(model: keras.Model) -> dict[int, str]:
    """id(seed state variable) -> "layer/attribute" of the generator owning it."""
    owners: dict[int, str] = {}
    for layer in [model, *_layers(model)]:
        for key, value in vars(layer).items():
            if isinstance(value, keras.random.SeedGenerator):
                owners.setdefault(id(value.state), f"{layer.name}/{key.lstrip('_')}")
    return owners


def _seed_states(model: keras.Model) -> list[Any]:
    """The state variables of every `SeedGenerator` the model's layers own."""
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


def _check_format(
    model: keras.Model,
    kind: str,
    report: FormatReport,
    inputs: Any,
    expected: Any,
    targets: Any,
    rng: np.random.Generator,
    state: _Snapshot,
    *,
    atol: float,
    rtol: float,
    fresh_process: bool,
    check_training: bool | None,
    using: str = "keras",
    backends: Sequence[str] = (),
) -> keras.Model | None:
    fmt, path, problems = report.format, Path(report.path), report.problems
    if problems:  # the save failed
        return None
    restored = _load(path, report, using)
    if restored is None:
        return None
    state.align_seeds(restored, report)
    state.reset_seeds(model)

    _check_class(model, restored, problems)
    report.checked.append("class")
    _check_configs(model, restored, problems)
    report.checked.append("config")
    _check_weights(model, restored, problems)
    report.checked.append("weights")
    got = _predict(restored, inputs, problems)
    if got is not None:
        _compare_outputs(expected, got, atol, rtol, problems)
        report.checked.append("outputs")
    if model.compiled and model.optimizer is not None:
        if targets is None:
            targets = _targets_like(expected, model, rng)
        state.reset_seeds(model, restored)
        with _eager(model, restored):
            _check_compile(model, restored, inputs, targets, atol, rtol, problems)
        report.checked.append("compile state")
        _check_optimizer(
            model,
            restored,
            problems,
            slots=kind
            not in (
                "loss",
                "metric",
                "initializer",
                "regularizer",
                "constraint",
                "schedule",
            ),
            state=state,
            fmt=fmt,
            using=using,
        )
        report.checked.append("optimizer state")
        legacy_probe = fmt == "h5" and kind not in ("model", "layer")
        if (check_training is None or check_training) and not legacy_probe:
            if not problems:
                state.reset_seeds(model, restored)
                with _eager(model, restored):
                    _check_training_step(
                        model, restored, inputs, targets, atol, rtol, problems
                    )
                report.checked.append("training step")
                if problems and fmt == "h5" and using == "keras":
                    problems[-1] += (
                        "; plain Keras's .h5 loader does not restore the "
                        "optimizer so that training resumes, serializable."
                        "load_model does: check with assert_roundtrip(..., "
                        "using='serializable')"
                    )
        state.reset_seeds(model)
    if fresh_process:
        _check_fresh_process(
            model, path, inputs, expected, atol, rtol, problems, using=using
        )
        report.checked.append("fresh process")
    for backend in backends:
        if problems:
            break  # a file that fails here says nothing new under another backend
        _check_fresh_process(
            model,
            path,
            inputs,
            expected,
            atol,
            rtol,
            problems,
            using=using,
            backend=backend,
        )
        report.checked.append(f"reload under {backend}")
    return restored


@contextlib.contextmanager
def _eager(*models: keras.Model) -> Any:
    """Run the compile-state and training checks eagerly, then put things back.

    These checks compare state, not graph execution; tracing a train and a
    test function for a freshly loaded model would cost several times more
    than the steps themselves.
    """
    kept = [(m, m.run_eagerly, m.train_function, m.test_function) for m in models]
    for m in models:
        m.run_eagerly = True
        m.train_function = m.test_function = None
    try:
        yield
    finally:
        for m, eager, train, test in kept:
            m.run_eagerly = eager
            m.train_function, m.test_function = train, test


def _targets_like(outputs: Any, model: keras.Model, rng: np.random.Generator) -> Any:
    def one(array: np.ndarray) -> np.ndarray:
        noise = rng.normal(scale=0.1, size=array.shape).astype(array.dtype)
        return array + noise

    return keras.tree.map_structure(one, outputs)


def _evaluate(model: keras.Model, inputs: Any, targets: Any) -> dict[str, float] | str:
    try:
        model.reset_metrics()
        values = model.test_on_batch(inputs, targets, return_dict=True)
    except Exception as err:
        return f"{type(err).__name__}: {err}"
    return {k: float(v) for k, v in values.items()}


def _check_compile(
    model: keras.Model,
    restored: keras.Model,
    inputs: Any,
    targets: Any,
    atol: float,
    rtol: float,
    problems: list[str],
) -> None:
    if not restored.compiled:
        problems.append("model was compiled, reloaded model is not")
        return
    a_loss, b_loss = getattr(model, "loss", None), getattr(restored, "loss", None)
    if _class_name(a_loss) != _class_name(b_loss):
        problems.append(
            f"loss saved {_class_name(a_loss)}, reloaded {_class_name(b_loss)}"
        )
    a_metrics = [_class_name(m) for m in _user_metrics(model)]
    b_metrics = [_class_name(m) for m in _user_metrics(restored)]
    if a_metrics != b_metrics:
        problems.append(f"metrics saved {a_metrics}, reloaded {b_metrics}")
    before = _evaluate(model, inputs, targets)
    after = _evaluate(restored, inputs, targets)
    if isinstance(before, str):
        return  # the targets do not fit this loss; nothing fair to compare
    if isinstance(after, str):
        problems.append(f"evaluate() on the reloaded model failed: {after}")
        return
    for key, value in before.items():
        if key not in after:
            problems.append(f"compiled metric '{key}' missing after reload")
        elif not np.isclose(value, after[key], atol=atol, rtol=rtol, equal_nan=True):
            problems.append(
                f"compiled '{key}' on the same batch: saved {value:.6g}, reloaded "
                f"{after[key]:.6g} (a loss or metric setting was lost)"
            )


def _class_name(obj: Any) -> str:
    if obj is None:
        return "None"
    if isinstance(obj, str):
        return obj
    if isinstance(obj, (list, tuple, dict)):
        return repr(keras.tree.map_structure(_class_name, obj))
    return getattr(obj, "__name__", None) or type(obj).__name__


def _user_metrics(model: keras.Model) -> list[Any]:
    """The metrics passed to compile(), flattened (built or not)."""
    user = _keras_compat.compiled_user_metrics(model)
    if user is None:
        return []
    return [m for m in keras.tree.flatten(user) if m is not None]


def _check_optimizer(
    model: keras.Model,
    restored: keras.Model,
    problems: list[str],
    slots: bool = True,
    *,
    state: _Snapshot | None = None,
    fmt: str = "keras",
    using: str = "keras",
) -> None:
    """Compare the reloaded optimizer with `state`, the original's as saved
    (taken now when None)."""
    if state is None:
        state = _Snapshot(model)
    a, b = model.optimizer, restored.optimizer
    if type(a) is not type(b):
        problems.append(
            f"optimizer saved {type(a).__name__}, reloaded {type(b).__name__}"
        )
        return
    _diff_config("optimizer config", _safe_config(a), _safe_config(b), problems)
    # Through numpy: `int()` on a Keras variable calls `int()` on its backend
    # value, which a `tf.distribute` MirroredVariable does not support.
    a_steps, b_steps = state.iterations, int(_numpy(b.iterations))
    if a_steps != b_steps:
        problems.append(
            f"optimizer iterations saved {a_steps}, reloaded {b_steps} "
            "(optimizer state lost: training will not resume where it stopped)"
        )
    if not slots or not state.optimizer_built:
        # An optimizer that never stepped has no slots yet; the reload may
        # build its (fresh) slots at once. Nothing was there to lose.
        return
    saved = state.optimizer_values
    if len(saved) != len(b.variables):
        if fmt == "h5" and using == "keras":
            fix = (
                "a legacy .h5 file written by model.save keeps no optimizer "
                "slots: save with serializable.save_model, which keeps them "
                "(check with assert_roundtrip(..., using='serializable')), or "
                "save as .keras"
            )
            fix += ". See " + docs_url("pitfalls", "optimizer-state-in-h5")
        else:
            fix = "the optimizer's variables were not restored from the file"
        problems.append(
            f"optimizer state lost: {len(saved)} optimizer variables saved, "
            f"{len(b.variables)} after reload (moments/slots not restored, so "
            f"training will not resume where it stopped; {fix})"
        )
        return
    # Paired by position, not by path: a slot is named after its model
    # variable's path, which a reloaded subclassed model does not repeat
    # ("tagger/dense/kernel" becomes "dense/kernel"), so pairing by path
    # silently compared no slot at all. Both optimizers create their slots in
    # the order of the model's trainable variables, compared above.
    for variable, x, other in zip(a.variables, saved, b.variables, strict=False):
        y = _numpy(other)
        if x.shape != y.shape or not np.array_equal(x, y):
            problems.append(
                f"optimizer variable '{variable.path}' differs: {_difference(x, y)}"
            )


def _check_training_step(
    model: keras.Model,
    restored: keras.Model,
    inputs: Any,
    targets: Any,
    atol: float,
    rtol: float,
    problems: list[str],
) -> None:
    if not model.optimizer.built:
        # Never trained: the step would build the optimizer's slots, which
        # could not be put back. Build them now (fresh, as the first step
        # would), so everything the step changes can be restored.
        model.optimizer.build(model.trainable_variables)
    saved_weights = [_numpy(v).copy() for v in model.weights]
    saved_opt = [_numpy(v).copy() for v in model.optimizer.variables]
    try:
        try:
            model.train_on_batch(inputs, targets)
        except Exception:
            return  # the targets do not fit this model; not a round-trip finding
        try:
            restored.train_on_batch(inputs, targets)
        except Exception as err:
            problems.append(
                f"a training step on the reloaded model failed: {innermost(err)}"
            )
            return
        for a, b in zip(model.weights, restored.weights, strict=False):
            x, y = _numpy(a), _numpy(b)
            if x.shape == y.shape and not np.allclose(
                x, y, atol=max(atol, 1e-5), rtol=max(rtol, 1e-4)
            ):
                problems.append(
                    f"after one identical training step {_weight_label(a)} differs: "
                    f"{_max_diff(x, y)} (training does not resume identically)"
                )
    finally:
        for variable, value in zip(model.weights, saved_weights, strict=True):
            variable.assign(value)
        for variable, value in zip(model.optimizer.variables, saved_opt, strict=False):
            variable.assign(value)


_CHILD = r"""
import importlib, json, os, sys, traceback
import numpy as np
request = json.loads(sys.argv[1])
sys.path[:0] = request["path"]
result = {}
try:
    for name in request["modules"]:
        importlib.import_module(name)
    import keras
    if request["using"] == "serializable":
        from serializable import load_model
    else:
        load_model = keras.models.load_model
    model = load_model(request["file"])
    with np.load(request["inputs"], allow_pickle=False) as data:
        arrays = [data[f"arr_{i}"] for i in range(len(data.files))]
    with np.load(request["seeds"], allow_pickle=False) as data:
        seeds = [data[f"arr_{i}"] for i in range(len(data.files))]
    states = [v for v in model.variables if v.path.endswith("seed_generator_state")]
    if len(states) == len(seeds):
        for variable, value in zip(states, seeds):
            variable.assign(value)
    inputs = keras.tree.pack_sequence_as(request["structure"], arrays)
    outputs = model(inputs, training=False)
    flat = [np.asarray(keras.ops.convert_to_numpy(t))
            for t in keras.tree.flatten(outputs)]
    np.savez(request["outputs"], *flat)
except BaseException as err:
    while (err.__cause__ or err.__context__) is not None:
        err = err.__cause__ or err.__context__
    text = str(err).split(" Full object config:")[0]
    result["error"] = f"{type(err).__name__}: {text}"
print("@@RESULT@@" + json.dumps(result))
"""


def registered_modules(model: keras.Model) -> tuple[list[str], list[str]]:
    """The modules that registered every custom object the saved model names.

    Returns the importable modules, and a description of each registered
    class or function that no new process can import (defined in `__main__`
    or inside a function).
    """
    from ._register import registering_module

    try:
        config = keras.saving.serialize_keras_object(model)
    except Exception:
        config = {}
    modules: set[str] = set()
    unimportable: set[str] = set()
    for name in _registered_names(config):
        obj = keras.saving.get_custom_objects().get(name)
        if obj is None:
            continue
        module = getattr(obj, "__module__", "") or ""
        qualname = getattr(obj, "__qualname__", name)
        if "<locals>" in qualname or module == "__main__":
            where = "inside a function" if "<locals>" in qualname else "in __main__"
            unimportable.add(f"{qualname} (registered as {name!r}) is defined {where}")
        else:
            modules.add(module)
        # A class registered from another module than its own (a third-party
        # class): that module is what makes the name known.
        registrar = registering_module(name)
        if registrar == "__main__":
            unimportable.add(
                f"{qualname} (registered as {name!r}) is registered in __main__"
            )
        elif registrar:
            modules.add(registrar)
    return sorted(modules), sorted(unimportable)


def _registered_names(config: Any) -> list[str]:
    names: list[str] = []
    if isinstance(config, dict):
        registered = config.get("registered_name")
        if isinstance(registered, str):
            if config.get("class_name") == "function" and isinstance(
                config.get("config"), str
            ):
                names.append(config["config"])
            else:
                names.append(registered)
        for value in config.values():
            names.extend(_registered_names(value))
    elif isinstance(config, (list, tuple)):
        for value in config:
            names.extend(_registered_names(value))
    return names


def _json_structure(inputs: Any) -> Any:
    """`inputs`' nesting with every array replaced by 0, as JSON can hold it."""
    if isinstance(inputs, dict):
        return {str(k): _json_structure(v) for k, v in inputs.items()}
    if isinstance(inputs, (list, tuple)):
        return [_json_structure(v) for v in inputs]
    return 0


def _check_fresh_process(
    model: keras.Model,
    path: Path,
    inputs: Any,
    expected: Any,
    atol: float,
    rtol: float,
    problems: list[str],
    *,
    using: str = "keras",
    backend: str | None = None,
) -> None:
    """Load `path` in a new process (under `backend`, or this one) and compare."""
    where = "fresh process" + (f" under {backend}" if backend else "")
    modules, unimportable = registered_modules(model)
    # Flat arrays plus the structure (dict keys, nesting): a dict of arrays
    # saved as one .npz entry would be an object array, which needs pickle.
    arrays = [np.asarray(a) for a in keras.tree.flatten(inputs)]
    structure = _json_structure(inputs)
    stem = path.suffix + (f".{backend}" if backend else "")
    inputs_file = path.with_suffix(stem + ".inputs.npz")
    seeds_file = path.with_suffix(stem + ".seeds.npz")
    outputs_file = path.with_suffix(stem + ".outputs.npz")
    np.savez(inputs_file, *arrays)
    # Keras saves no SeedGenerator state: the new process starts its random
    # draws where the original's stood, as the in-process check does.
    np.savez(seeds_file, *[_numpy(v).copy() for v in _seed_states(model)])
    request = {
        "path": [p for p in sys.path if p],
        "modules": modules,
        "file": str(path),
        "inputs": str(inputs_file),
        "seeds": str(seeds_file),
        "structure": structure,
        "outputs": str(outputs_file),
        "using": using,
    }
    env = {**os.environ, "KERAS_BACKEND": backend or keras.backend.backend()}
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(request)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    marker = [
        line for line in result.stdout.splitlines() if line.startswith("@@RESULT@@")
    ]
    if not marker:
        problems.append(
            f"{where} crashed (exit {result.returncode}): "
            f"{result.stderr.strip()[-500:]}"
        )
        return
    outcome = json.loads(marker[-1][len("@@RESULT@@") :])
    if "error" in outcome:
        hint = f" (the new process imported only {modules})"
        if unimportable:
            hint += (
                "; a new process cannot import "
                + "; ".join(unimportable)
                + ": move it to module level in an importable module"
            )
        problems.append(f"{where} could not load the file: {outcome['error']}{hint}")
        return
    with np.load(outputs_file, allow_pickle=False) as data:
        got = [data[f"arr_{i}"] for i in range(len(data.files))]
    flat_expected = keras.tree.flatten(expected)
    for index, (x, y) in enumerate(zip(flat_expected, got, strict=False)):
        a_tol, r_tol = atol, rtol
        if backend is not None:  # other kernels: agree to float precision
            low = x.dtype.itemsize <= 2 and x.dtype.kind not in "biu"
            a_tol, r_tol = (
                max(atol, 1e-2 if low else 1e-5),
                max(rtol, 1e-2 if low else 1e-4),
            )
        if x.shape != y.shape or not np.allclose(
            x, y, atol=a_tol, rtol=r_tol, equal_nan=True
        ):
            problems.append(f"{where} output {index} differs: {_difference(x, y)}")
