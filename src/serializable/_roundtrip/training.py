"""The checks of a compiled model: compile state, optimizer, one training step."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from .. import _keras_compat
from .._compare import (
    _diff_config,
    _difference,
    _max_diff,
    _numpy,
    _safe_config,
    _weight_label,
)
from .._errors import docs_url, innermost
from .settings import Run
from .snapshot import _Snapshot


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
    run: Run, restored: keras.Model, targets: Any, problems: list[str]
) -> None:
    """Compare the compile settings and `evaluate` on the batch."""
    model, inputs = run.model, run.inputs
    atol, rtol = run.settings.atol, run.settings.rtol
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
    run: Run, restored: keras.Model, targets: Any, problems: list[str]
) -> None:
    """One identical training step on both models; the weights must agree.
    The original's weights and optimizer state are put back afterwards."""
    model, inputs = run.model, run.inputs
    atol, rtol = run.settings.atol, run.settings.rtol
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
