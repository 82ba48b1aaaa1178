"""One format: save it, load it, and run every check on the reload.

`_save` and `_load` use Keras or, with `using='serializable'`, the library;
a failure is reported as a problem, not raised. `api` saves every format
before it checks any.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from pathlib import Path
from typing import Any

import keras

from .. import _keras_compat
from .._compare import (
    _check_class,
    _check_configs,
    _check_weights,
    _compare_outputs,
    _predict,
)
from .._errors import innermost
from .fresh import _check_fresh_process
from .report import FormatReport
from .settings import Run
from .training import (
    _check_compile,
    _check_optimizer,
    _check_training_step,
    _targets_like,
)


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
                from .._files import save_model

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
                from .._files import load_model

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
        from .._files import load_model

        with _quiet_deprecations(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            load_model(path)
    except Exception:
        return False
    return True


def _check_format(run: Run, report: FormatReport) -> keras.Model | None:
    fmt, path, problems = report.format, Path(report.path), report.problems
    model, kind, state, settings = run.model, run.kind, run.state, run.settings
    using, check_training = settings.using, settings.check_training
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
    got = _predict(restored, run.inputs, problems)
    if got is not None:
        _compare_outputs(run.expected, got, settings.atol, settings.rtol, problems)
        report.checked.append("outputs")
    if (
        model.compiled
        and model.optimizer is not None
        and getattr(restored, "optimizer", None) is None
    ):
        problems.append(
            f"compile state lost: the model was compiled (optimizer "
            f"{type(model.optimizer).__name__}), the reload is not: its compile "
            "arguments were not saved or could not be applied (a custom "
            "compile() that takes other arguments is not recorded by Keras). "
            "Compile the reloaded model again before training"
        )
    elif model.compiled and model.optimizer is not None:
        targets = run.targets
        if targets is None:
            targets = _targets_like(run.expected, model, run.rng)
        state.reset_seeds(model, restored)
        with _eager(model, restored):
            _check_compile(run, restored, targets, problems)
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
                    _check_training_step(run, restored, targets, problems)
                report.checked.append("training step")
                if problems and fmt == "h5" and using == "keras":
                    problems[-1] += (
                        "; plain Keras's .h5 loader does not restore the "
                        "optimizer so that training resumes, serializable."
                        "load_model does: check with assert_roundtrip(..., "
                        "using='serializable')"
                    )
        state.reset_seeds(model)
    if settings.fresh_process:
        _check_fresh_process(run, path, problems)
        report.checked.append("fresh process")
    for backend in settings.backends:
        if problems:
            break  # a file that fails here says nothing new under another backend
        _check_fresh_process(run, path, problems, backend=backend)
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
