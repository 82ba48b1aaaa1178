"""Comparing a model with its reloaded copy, in memory (no file is read or written).

Used by `assert_roundtrip` for every format and by `save_model(verify=True)`:
the class, the configs key by key (tuples told apart from lists where the
library generated the config), a hand-written `get_config` that forgets an
`__init__` argument, non-weight state, every weight by path, and the outputs
on one batch (synthesized from the model's input specs when none is given).
Each check appends what differs, in users' words, to a list of problems.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from . import _keras_compat, _registry
from ._errors import docs_url, innermost

# The original objects' configs, computed once per assert_roundtrip call: the
# checks read them for every format and every layer.
_ORIGINAL_CONFIGS: contextvars.ContextVar[dict[int, tuple[Any, Any]] | None] = (
    contextvars.ContextVar("serializable_original_configs", default=None)
)


def _original_config(obj: Any) -> Any:
    entry = (_ORIGINAL_CONFIGS.get() or {}).get(id(obj))
    if entry is not None and entry[0] is obj:
        return entry[1]
    return _safe_config(obj)


def compare_models(
    model: keras.Model,
    restored: keras.Model,
    inputs: Any = None,
    *,
    atol: float = 1e-6,
    rtol: float = 1e-6,
    seed: int = 0,
) -> list[str]:
    """Differences between a model and its reloaded copy: class, configs,
    weights and outputs (the checks that need no file)."""
    problems: list[str] = []
    _check_class(model, restored, problems)
    _check_configs(model, restored, problems)
    _check_weights(model, restored, problems)
    if inputs is None:
        try:
            inputs = synthesize_inputs(model, np.random.default_rng(seed))
        except ValueError:
            return problems  # an unbuilt model has no outputs to compare
    got = _predict(restored, inputs, problems)
    if got is not None:
        _compare_outputs(_predict(model, inputs), got, atol, rtol, problems)
    return problems


def _build_shapes(layer: keras.layers.Layer) -> list[tuple[Any, ...]] | None:
    config = layer.get_build_config() if layer.built else None
    if not config:
        return None
    if "input_shape" in config:
        shape = config["input_shape"]
        if shape and isinstance(shape[0], (list, tuple)):
            return [tuple(s) for s in shape]
        return [tuple(shape)]
    if "shapes_dict" in config:
        return [tuple(s) for s in config["shapes_dict"].values()]
    return None


def synthesize_inputs(
    model: keras.Model, rng: np.random.Generator, batch: int = 4
) -> Any:
    """Make a seeded batch matching the model's input specs (dtype-aware)."""
    try:
        specs = model.inputs
    except (AttributeError, ValueError):
        specs = None
    if not specs:
        shapes = _build_shapes(model)
        if shapes is None:
            message = (
                f"assert_roundtrip cannot make inputs for model '{model.name}': "
                "expected a built model or example `inputs`. Received: an unbuilt "
                f"{type(model).__name__} and inputs=None. Call the model once or "
                "pass inputs=..."
            )
            raise ValueError(message)
        arrays = [_sample(shape, "float32", rng, batch) for shape in shapes]
        return arrays[0] if len(arrays) == 1 else arrays
    try:
        structure = model.input  # dict inputs stay a dict
    except (AttributeError, ValueError):
        structure = None
    if isinstance(structure, dict):
        return {
            key: _sample(tuple(t.shape), t.dtype, rng, batch)
            for key, t in structure.items()
        }
    arrays = [_sample(tuple(t.shape), t.dtype, rng, batch) for t in specs]
    return arrays[0] if len(arrays) == 1 else arrays


def _sample(
    shape: tuple[Any, ...], dtype: str, rng: np.random.Generator, batch: int
) -> np.ndarray:
    dims = [batch] + [3 if d is None else int(d) for d in shape[1:]]
    kind = np.dtype(keras.backend.standardize_dtype(dtype)).kind
    if kind in "iu":
        return rng.integers(0, 2, size=dims).astype(dtype)
    if kind == "b":
        return rng.integers(0, 2, size=dims).astype(bool)
    return rng.normal(size=dims).astype(keras.backend.standardize_dtype(dtype))


def _check_class(model: Any, restored: Any, problems: list[str]) -> None:
    if type(restored) is not type(model):
        a, b = type(model), type(restored)
        problems.append(
            f"class saved {a.__module__}.{a.__qualname__}, reloaded "
            f"{b.__module__}.{b.__qualname__}"
        )


def _layers(model: keras.Model) -> list[keras.layers.Layer]:
    return _keras_compat.flatten_layers(model)


def _model_config(model: keras.Model) -> Any:
    """The model's own config; its layers are compared one by one instead."""
    config = _original_config(model)
    if isinstance(config, dict):
        config = {k: v for k, v in config.items() if k not in _PER_LAYER_KEYS}
    return config


# Keys compared elsewhere (per layer) or Keras bookkeeping that JSON turns from
# tuples into lists without consequence.
_PER_LAYER_KEYS = {"layers", "build_config", "compile_config"}


def _check_configs(
    model: keras.Model, restored: keras.Model, problems: list[str]
) -> None:
    _diff_config(
        "model config",
        _model_config(model),
        _model_config(restored),
        problems,
        strict=_generated(model),
    )
    originals = _layers(model)
    reloaded = _layers(restored)
    if len(originals) != len(reloaded):
        problems.append(
            f"model has {len(originals)} layers, reloaded has {len(reloaded)}: "
            f"saved {[x.name for x in originals]}, reloaded "
            f"{[x.name for x in reloaded]}"
        )
        return
    for a, b in zip(originals, reloaded, strict=True):
        where = f"layer '{a.name}'"
        if type(a) is not type(b):
            problems.append(
                f"{where} class saved {type(a).__qualname__}, reloaded "
                f"{type(b).__qualname__}"
            )
            continue
        mine, theirs = _original_config(a), _safe_config(b)
        if _config_failed(mine) or _config_failed(theirs):
            # A sublayer no config serializes (its parent's hand-written
            # get_config rebuilds it from its own arguments): Keras never asks
            # for it, so what it would say is not in the file either way.
            pass
        elif not isinstance(a, keras.Model):  # models are compared as a whole above
            _diff_config(
                f"{where} config",
                mine,
                theirs,
                problems,
                strict=_generated(a),
            )
        _check_state_attributes(where, a, b, problems)


_MISSING = object()


def _check_config_completeness(
    model: keras.Model, restored_models: Sequence[keras.Model], problems: list[str]
) -> None:
    """A hand-written get_config that forgets an __init__ argument.

    Reload calls the constructor with the config, so a missing argument comes
    back with its default: a different object, silently. It is reported when
    the reloaded object really differs (an `__init__` that turns a default of
    None into a computed value, as `data_format=None` into
    `keras.config.image_data_format()`, reloads the same). Keras's own classes
    are skipped (their configs are reviewed upstream).
    """
    import inspect

    originals = [model, *_layers(model)]
    partners: list[list[Any]] = [[] for _ in originals]
    for restored in restored_models:
        others = [restored, *_layers(restored)]
        if len(others) == len(originals):
            for index, other in enumerate(others):
                if type(other) is type(originals[index]):
                    partners[index].append(other)
    for obj, reloaded in zip(originals, partners, strict=True):
        cls = type(obj)
        if _registry.is_keras_own(cls):
            continue
        config = _original_config(obj)
        if not isinstance(config, dict):
            # A sublayer's get_config matters only if its parent's config
            # serializes it, and then the save itself fails (reported as
            # such); a parent's hand-written config may rebuild it from its
            # own arguments instead.
            if obj is model:
                problems.append(f"layer '{obj.name}' get_config failed: {config}")
            continue
        try:
            params = list(inspect.signature(cls.__init__).parameters.values())[1:]
        except (TypeError, ValueError):
            continue
        for param in params:
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            if param.name in config:
                continue
            where = (
                f"layer '{obj.name}' ({cls.__name__}) get_config omits __init__ "
                "argument"
            )
            if param.default is param.empty:
                if reloaded:
                    continue  # it reloaded, so the class rebuilds the argument
                problems.append(
                    f"{where} '{param.name}', which has no default: reloading will "
                    f"fail. Add it to get_config, or drop get_config and let "
                    "serializable generate it"
                )
                continue
            current = getattr(obj, param.name, _MISSING)
            if current is _MISSING:
                continue
            if reloaded:
                values = [getattr(o, param.name, _MISSING) for o in reloaded]
                differ = [
                    v
                    for v in values
                    if v is not _MISSING and not _same_value(current, v)
                ]
                if not differ:
                    continue
                value = differ[0]
            elif not _same_value(current, param.default):
                value = param.default
            else:
                continue
            which = "the default " if _same_value(value, param.default) else ""
            problems.append(
                f"{where} '{param.name}': the object has {param.name}="
                f"{_short(current)} but reloads with {which}{_short(value)}. Add it "
                "to get_config, or drop get_config and let serializable generate it"
            )


def _same_value(a: Any, b: Any) -> bool:
    try:
        if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
            return bool(np.array_equal(a, b))
        return bool(a == b)
    except Exception:
        return False


def _config_failed(config: Any) -> bool:
    return isinstance(config, str) and config.startswith("<get_config raised")


def _safe_config(obj: Any) -> Any:
    try:
        return obj.get_config()
    except Exception as err:
        return f"<get_config raised {type(err).__name__}: {err}>"


def _generated(obj: Any) -> bool:
    """True if `obj`'s config is the one keras-serializable generates.

    Generated configs promise that a tuple comes back a tuple; a hand-written
    `get_config` (Keras's own classes, keras-hub's, a registered third-party
    class) gets what Keras gives it, where JSON turns tuples into lists
    without consequence: those are compared as they would be without the
    library.
    """
    get_config = getattr(type(obj), "get_config", None)
    from ._config import _GENERATED

    return bool(getattr(get_config, _GENERATED, False))


def _diff_config(
    where: str,
    a: Any,
    b: Any,
    problems: list[str],
    path: str = "",
    *,
    strict: bool = False,
) -> None:
    """Key-level structural diff.

    With `strict`, tuples and lists are different types. Under any
    `build_config` they never are: that is Keras's bookkeeping of input
    shapes, which JSON turns into lists in every format.
    """
    if strict and path.endswith("['build_config']"):
        strict = False
    if isinstance(a, dict) and isinstance(b, dict):
        for key in a:
            if key not in b:
                problems.append(
                    f"{where}{path}[{key!r}] saved {_short(a[key])}, missing after "
                    "reload"
                )
        for key in b:
            if key not in a:
                problems.append(
                    f"{where}{path}[{key!r}] not saved, reloaded {_short(b[key])}"
                )
        for key in a:
            if key in b:
                _diff_config(
                    where, a[key], b[key], problems, f"{path}[{key!r}]", strict=strict
                )
        return
    if (
        isinstance(a, (list, tuple))
        and isinstance(b, (list, tuple))
        and (not strict or isinstance(a, tuple) == isinstance(b, tuple))
    ):
        if len(a) != len(b):
            problems.append(f"{where}{path} saved {_short(a)}, reloaded {_short(b)}")
            return
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _diff_config(where, x, y, problems, f"{path}[{i}]", strict=strict)
        return
    if type(a) is not type(b) and not (_is_number(a) and _is_number(b)):
        problems.append(
            f"{where}{path} saved {_short(a)} ({type(a).__name__}), reloaded "
            f"{_short(b)} ({type(b).__name__})"
        )
        return
    if isinstance(a, np.ndarray):
        if a.shape != b.shape or a.dtype != b.dtype or not np.array_equal(a, b):
            problems.append(f"{where}{path} saved {_short(a)}, reloaded {_short(b)}")
        return
    if _is_number(a) and isinstance(a, float) and np.isnan(a) and np.isnan(b):
        return
    # Any "name", not only the layer's own: a layer made in a parent's
    # __init__ and passed to a child (Gated(Dense(8))) is renumbered on reload
    # and its name is nested in the child's config.
    if a != b and not (path.endswith("['name']") and _same_auto_name(a, b)):
        problems.append(f"{where}{path} saved {_short(a)}, reloaded {_short(b)}")


def _same_auto_name(a: Any, b: Any) -> bool:
    """`dense_1` and `dense_3`: Keras numbers names of layers made in __init__."""
    import re

    if not (isinstance(a, str) and isinstance(b, str)):
        return False
    return re.sub(r"_\d+$", "", a) == re.sub(r"_\d+$", "", b)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@functools.cache
def _framework_attributes() -> frozenset[str]:
    """Public attributes every layer has on this backend, bar `name`.

    They are Keras's (and the backend's) bookkeeping, not user state: torch's
    `nn.Module.training`, say, is True on a fresh layer and False after `fit`.
    What of them is configuration is compared through the config instead.
    """
    bare = {**vars(keras.layers.Layer(name="probe")), **vars(keras.Model(name="probe"))}
    return frozenset(k for k in bare if not k.startswith("_") and k != "name")


def _check_state_attributes(where: str, a: Any, b: Any, problems: list[str]) -> None:
    """Non-weight state: numpy arrays and plain values set after __init__.

    See docs/pitfalls.md#non-weight-state.
    """
    import inspect

    config = _original_config(a)
    if not isinstance(config, dict):
        config = {}
    try:
        params = set(inspect.signature(type(a).__init__).parameters)
    except (TypeError, ValueError):
        params = set()
    framework = _framework_attributes()
    for key, value in vars(a).items():
        if key.startswith("_") or key not in vars(b) or key in framework:
            continue
        if key in params and key not in config:
            continue  # reported once, as an incomplete config
        other = vars(b)[key]
        if isinstance(value, np.ndarray) and isinstance(other, np.ndarray):
            if value.shape != other.shape or not np.array_equal(value, other):
                problems.append(
                    f"{where} attribute '{key}' (non-weight state) differs: saved "
                    f"{_short(value)}, reloaded {_short(other)}; keep it as a "
                    "constructor argument or with serializable.add_state_weight()"
                )
        elif isinstance(value, (int, float, str, bool)) and type(value) is type(other):
            if key == "name" and _same_auto_name(value, other):
                continue
            if value != other and not (isinstance(value, float) and np.isnan(value)):
                if key in config and _same_value(config[key], other):
                    problems.append(
                        f"{where} stale config: config[{key!r}] is {_short(other)} but "
                        f"the object's {key} is {_short(value)}, changed after "
                        "__init__; "
                        "pass the value to the constructor instead of setting the "
                        "attribute later"
                    )
                else:
                    problems.append(
                        f"{where} attribute '{key}' (non-weight state) saved "
                        f"{_short(value)}, reloaded {_short(other)}; keep it as a "
                        "constructor argument or with serializable.add_state_weight()"
                    )


def _check_weights(
    model: keras.Model, restored: keras.Model, problems: list[str]
) -> None:
    saved = model.weights
    loaded = restored.weights
    unique_saved = len({id(v) for v in saved})
    unique_loaded = len({id(v) for v in loaded})
    if unique_saved != unique_loaded:
        if unique_loaded == 0:
            why = (
                "the reloaded model has no weights: the model was saved unbuilt "
                "(e.g. trained only through a custom train_step that calls its "
                "layers). Call the model once on a batch, or build() it, before "
                "saving"
            )
        elif unique_loaded < unique_saved and len(loaded) < len(saved):
            why = "some weights were not saved or not restored"
        else:
            why = "shared or tied weights were duplicated or merged; see " + docs_url(
                "pitfalls", "shared-layers-tied-weights"
            )
        problems.append(
            f"{unique_saved} unique variables saved, {unique_loaded} after reload "
            f"({why})"
        )
    if saved and not loaded:
        return  # said once above, not weight by weight
    by_path = {v.path: v for v in loaded}
    paired = len(saved) == len(loaded)
    for index, variable in enumerate(saved):
        # Same position and path first: two weights may share a path
        # (docs/pitfalls.md#duplicate-weight-names).
        if paired and loaded[index].path == variable.path:
            other = loaded[index]
        else:
            other = by_path.get(variable.path)
        if other is None and paired:
            other = loaded[index]
        if other is None:
            problems.append(f"weight '{variable.path}' missing after reload")
            continue
        _compare_variable(variable, other, problems)


def _compare_variable(a: Any, b: Any, problems: list[str]) -> None:
    where = _weight_label(a)
    if tuple(a.shape) != tuple(b.shape):
        problems.append(
            f"{where} shape saved {tuple(a.shape)}, reloaded {tuple(b.shape)}"
        )
        return
    if a.dtype != b.dtype:
        problems.append(f"{where} dtype saved {a.dtype}, reloaded {b.dtype}")
    if a.trainable != b.trainable:
        problems.append(
            f"{where} trainable saved {a.trainable}, reloaded {b.trainable}"
        )
    x, y = _numpy(a), _numpy(b)
    equal = np.array_equal(x, y) or (
        x.dtype.kind in "fc" and np.array_equal(x, y, equal_nan=True)
    )
    if not equal:
        problems.append(f"{where} differs: {_max_diff(x, y)} (not restored?)")


def _numpy(variable: Any) -> np.ndarray:
    """A variable's value as NumPy, without Keras's two copies where possible."""
    from ._backends import array_view

    return array_view(variable)


def _weight_label(variable: Any) -> str:
    path = variable.path
    owner, _, name = path.rpartition("/")
    return f"layer '{owner}' weight '{name}'" if owner else f"weight '{name}'"


def _difference(x: np.ndarray, y: np.ndarray) -> str:
    if x.shape != y.shape:
        return f"shape {x.shape} saved, {y.shape} reloaded"
    return _max_diff(x, y)


def _max_diff(x: np.ndarray, y: np.ndarray) -> str:
    if x.dtype.kind not in "biufc":
        return "values differ"
    diff = np.abs(x.astype("float64") - y.astype("float64"))
    if diff.ndim == 0:
        return f"max abs diff {float(diff):.3g}"
    index = np.unravel_index(int(np.nanargmax(diff)), diff.shape)
    return f"max abs diff {float(diff[index]):.3g} at {list(map(int, index))}"


def _predict(model: keras.Model, inputs: Any, problems: list[str] | None = None) -> Any:
    try:
        outputs = model(inputs, training=False)
    except Exception as err:
        if problems is None:
            raise
        problems.append(f"calling the reloaded model failed: {innermost(err)}")
        return None
    return keras.tree.map_structure(
        lambda t: np.asarray(keras.ops.convert_to_numpy(t)), outputs
    )


def _compare_outputs(
    expected: Any, got: Any, atol: float, rtol: float, problems: list[str]
) -> None:
    try:
        keras.tree.assert_same_structure(expected, got)
    except (ValueError, TypeError):
        problems.append(
            f"output structure saved {_structure(expected)}, reloaded {_structure(got)}"
        )
        return
    flat_expected = keras.tree.flatten(expected)
    flat_got = keras.tree.flatten(got)
    for index, (x, y) in enumerate(zip(flat_expected, flat_got, strict=True)):
        label = "outputs" if len(flat_expected) == 1 else f"output {index}"
        if x.shape != y.shape:
            problems.append(f"{label} shape saved {x.shape}, reloaded {y.shape}")
        elif not np.allclose(x, y, atol=atol, rtol=rtol, equal_nan=True):
            problems.append(f"{label} change after reload: {_max_diff(x, y)}")


def _structure(value: Any) -> str:
    return repr(keras.tree.map_structure(lambda _: "*", value))
