"""The one module that touches Keras internals (`keras.src`, private attributes).

Everything else in the library uses public Keras API only; `tests/test_layout.py`
enforces it. Each function below says what it wraps, the Keras versions it was
checked against, and what happens when the internal is missing in some other
Keras release: a fallback, never an `ImportError` at `import serializable`.
Importing this module imports nothing from Keras; each function imports what
it needs when called.

Every internal used here was checked, present and working, on Keras 3.8.0,
3.11.3 and 3.15.1 (`tests/test_keras_compat.py`, which CI runs at the oldest
supported and the newest Keras). The supported range, `KERAS_TESTED` and
`pyproject.toml`, starts higher, at 3.11.3, for a Keras bug these wrappers
cannot reach (README, "Keras versions").

Three groups:

* the registry (public API, plus names Keras's decorator cannot record);
* model internals (layers, own variables, output structure, compiled metrics,
  loss and metric dtypes, building a layer by tracing `call`);
* the legacy `.h5` machinery Keras keeps in `keras.src.legacy`, and the
  deferred variable initialization the fast `.h5` reader uses.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
from collections.abc import Iterator
from typing import Any

from ._errors import FormatLimitError

# The oldest supported and the newest Keras release CI tests.
KERAS_TESTED = ("3.11.3", "3.15.1")


def _missing(what: str) -> FormatLimitError:
    import keras

    low, high = KERAS_TESTED
    message = (
        f"This Keras has no {what}, which legacy .h5 files need: expected Keras "
        f"{low} to {high}, where it exists. Received: "
        f"keras.__version__={keras.__version__!r}. Save and load `.keras` files, "
        "or install a Keras release in the supported range."
    )
    return FormatLimitError(message)


# ---------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------

# Names recorded for objects whose name Keras could not be told (see
# `register_name`); consulted after Keras's own registry.
_EXTRA_NAMES: dict[Any, str] = {}


def custom_objects() -> dict[str, Any]:
    """Keras's global registry, registered name -> object (the live dict).

    Public API (`keras.saving.get_custom_objects`), documented as the way to
    read and edit the registry directly. Keras 3.8.0-3.15.1.
    """
    import keras

    return keras.saving.get_custom_objects()


def registered_name(obj: Any) -> str | None:
    """The name `obj` is registered under, or None if it is not registered.

    Public API: `keras.saving.get_registered_name`, which answers the
    registered name (always `"package>name"`) of a registered object and
    `obj.__name__` otherwise. Unhashable values and objects without a name are
    never registered. Keras 3.8.0-3.15.1.
    """
    import keras

    try:
        name = keras.saving.get_registered_name(obj)
    except (TypeError, AttributeError):
        return None
    if isinstance(name, str) and name != getattr(obj, "__name__", None):
        return name
    try:
        return _EXTRA_NAMES.get(obj)
    except TypeError:
        return None


def is_registered(obj: Any) -> bool:
    """Whether loading can find `obj` by its registered name."""
    return registered_name(obj) is not None


def register_name(obj: Any, name: str) -> None:
    """Register `obj` (an Enum class) under `name` without Keras's decorator,
    which insists on `get_config`.

    Writes the public registry (`keras.saving.get_custom_objects()`), and the
    reverse map `keras.src.saving.object_registration.GLOBAL_CUSTOM_NAMES`
    so that `keras.saving.get_registered_name(obj)` answers `name` (checked on
    Keras 3.8.0-3.15.1). Without that map, the name is kept here and
    `registered_name` still answers it; only Keras's own
    `get_registered_name` then answers the bare class name.
    """
    custom_objects()[name] = obj
    try:
        from keras.src.saving import object_registration

        object_registration.GLOBAL_CUSTOM_NAMES[obj] = name
    except (ImportError, AttributeError):
        _EXTRA_NAMES[obj] = name


@functools.cache
def keras_builtin_names() -> frozenset[str]:
    """Class names Keras resolves by itself: its layers (both the exported name
    and the class's own, e.g. `GroupQueryAttention` and
    `GroupedQueryAttention`), its models, `Functional` and `InputLayer`.

    Public API only (`vars(keras.layers)`, `vars(keras.models)`).
    """
    import keras

    names = {"Functional", "Model", "Sequential", "InputLayer"}
    for module in (keras.layers, keras.models):
        for key, value in vars(module).items():
            names.add(key)
            if isinstance(value, type):
                names.add(value.__name__)
    return frozenset(names)


def operation_class(class_name: str) -> type | None:
    """The Keras operation class `class_name` (`NotEqual`, say), or None.

    Legacy `.h5` records operations used in a functional model (a mask's
    `NotEqual`) by bare class name; the classes are not exported, only the
    functions are. Looks in `keras.src.ops.{numpy,nn,math,core,linalg,image}`
    (Keras 3.8.0-3.15.1). Missing: None, and Keras reports the class unknown.
    """
    import keras

    for module_name in ("numpy", "nn", "math", "core", "linalg", "image"):
        try:
            module = importlib.import_module(f"keras.src.ops.{module_name}")
        except ImportError:
            continue
        # vars(), not getattr: a name from a file never reaches a module's
        # __getattr__ (lazy modules import on attribute access).
        cls = vars(module).get(class_name)
        if isinstance(cls, type) and issubclass(cls, keras.Operation):
            return cls
    return None


def saveable_types() -> tuple[type, ...]:
    """The Keras classes whose instances Keras serializes with a config.

    Public API: Keras's internal `KerasSaveable` base has exactly these public
    subclasses (operations, i.e. layers and models; losses; metrics;
    optimizers). Keras 3.8.0-3.15.1.
    """
    import keras

    return (
        keras.Operation,
        keras.losses.Loss,
        keras.metrics.Metric,
        keras.optimizers.Optimizer,
    )


# ---------------------------------------------------------------------------
# Models and layers
# ---------------------------------------------------------------------------


@functools.cache
def functional_class() -> type:
    """Keras's `Functional` model class (not exported).

    `keras.src.models.functional.Functional` (Keras 3.8.0-3.15.1). Missing:
    the class `keras.Model(inputs, outputs)` creates, found through
    `Model.__new__` without running `__init__`.
    """
    try:
        from keras.src.models.functional import Functional

        return Functional
    except ImportError:
        return _functional_class_public()


def _functional_class_public() -> type:
    import keras

    return type(keras.Model.__new__(keras.Model, None, None))


def is_functional(model: Any) -> bool:
    """Whether `model` is a functional model (its graph rebuilt by __init__)."""
    return isinstance(model, functional_class())


def functional_init_arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether `Model(*args, **kwargs)` is a functional-API call.

    The same test as `keras.src.models.model.functional_init_arguments`
    (unchanged Keras 3.8.0-3.15.1), written out so no import is needed.
    """
    return (
        len(args) == 2
        or (len(args) == 1 and "outputs" in kwargs)
        or ("inputs" in kwargs and "outputs" in kwargs)
    )


def flatten_layers(layer: Any, include_self: bool = False) -> list[Any]:
    """Every layer nested in `layer`, recursively, each once, in Keras's order.

    `Layer._flatten_layers(include_self, recursive=True)` (Keras
    3.8.0-3.15.1). Missing: a walk over models' public `layers` and other
    layers' public attributes (layers, and lists, tuples and dicts of them),
    which finds the same layers but a `Sequential`'s `InputLayer`, perhaps in
    another order.
    """
    flatten = getattr(layer, "_flatten_layers", None)
    if flatten is not None:
        return list(flatten(include_self=include_self, recursive=True))
    return _walk_layers(layer, include_self)


def _walk_layers(layer: Any, include_self: bool) -> list[Any]:
    import keras

    found: list[Any] = [layer] if include_self else []
    seen = {id(layer)}
    stack = [layer]
    while stack:
        current = stack.pop()
        if isinstance(current, keras.Model):
            values = list(current.layers)
        else:
            values = [v for k, v in vars(current).items() if not k.startswith("_")]
        children: list[Any] = []
        while values:
            value = values.pop(0)
            if isinstance(value, keras.layers.Layer):
                children.append(value)
            elif isinstance(value, (list, tuple)):
                values[:0] = list(value)
            elif isinstance(value, dict):
                values[:0] = list(value.values())
        for child in reversed(children):
            if id(child) not in seen:
                seen.add(id(child))
                found.append(child)
                stack.append(child)
    return found


def own_variables(layer: Any) -> list[Any]:
    """The variables `layer` created itself (not its sublayers'): trainable
    first, then non-trainable, as Keras's legacy `.h5` order has them.

    `layer._trainable_variables + layer._non_trainable_variables` (Keras
    3.8.0-3.15.1). Missing: the layer's weights that no sublayer holds.
    """
    trainable = getattr(layer, "_trainable_variables", None)
    non_trainable = getattr(layer, "_non_trainable_variables", None)
    if trainable is not None and non_trainable is not None:
        return list(trainable) + list(non_trainable)
    return _own_variables_public(layer)


def _own_variables_public(layer: Any) -> list[Any]:
    nested = {id(v) for sub in flatten_layers(layer) for v in sub.weights}
    legacy = list(layer.trainable_weights) + list(layer.non_trainable_weights)
    return [v for v in legacy if id(v) not in nested]


def outputs_structure(model: Any) -> Any:
    """The nesting of a functional model's outputs (a tuple, list, dict...).

    `Functional._outputs_struct` (Keras 3.8.0-3.15.1). Missing: None, and tuple
    outputs then reload as Keras restores them (lists).
    """
    return getattr(model, "_outputs_struct", None)


def set_outputs_structure(model: Any, structure: Any) -> None:
    """Set what `outputs_structure` reads; a no-op where Keras has no such field."""
    if hasattr(model, "_outputs_struct"):
        model._outputs_struct = structure


def compiled_user_metrics(model: Any) -> list[Any] | None:
    """The `metrics` and `weighted_metrics` passed to `compile()`, unflattened,
    or None when the model was compiled without them or not at all.

    `model._compile_metrics._user_metrics` and `._user_weighted_metrics`
    (Keras 3.8.0-3.15.1). Missing: None, so the metrics are not compared.
    """
    compiled = getattr(model, "_compile_metrics", None)
    if compiled is None:
        return None
    user = getattr(compiled, "_user_metrics", None)
    weighted = getattr(compiled, "_user_weighted_metrics", None)
    return [user, weighted]


def set_compute_dtype(obj: Any, policy: Any) -> None:
    """Give a loss or metric the dtype policy `policy` after construction.

    Losses and metrics have a read-only `dtype`; it lives in `_dtype_policy`
    and `_dtype` (Keras 3.8.0-3.15.1).
    Where they are missing, the attributes are created, which is harmless.
    """
    obj._dtype_policy = policy
    obj._dtype = policy.compute_dtype if hasattr(obj, "_dtype") else None


def build_by_running(layer: Any, config: dict[str, Any]) -> bool:
    """Build `layer`, which has no `build()` of its own, by tracing `call` on
    the shapes in its build config; whether it did.

    Keras's `Layer` does this for models (`_build_by_run_for_single_pos_arg`,
    `_build_by_run_for_kwargs`, recorded in `_build_shapes_dict`; a default
    `build` carries `_is_default`), Keras 3.8.0-3.15.1. Missing: False, and the
    caller builds the ordinary way.
    """
    if not getattr(layer.build, "_is_default", False) or layer.built:
        return False
    by_shape = getattr(layer, "_build_by_run_for_single_pos_arg", None)
    by_kwargs = getattr(layer, "_build_by_run_for_kwargs", None)
    if by_shape is None or by_kwargs is None:
        return False
    if "input_shape" in config:
        built = by_shape(config["input_shape"])
    elif "shapes_dict" in config:
        built = by_kwargs(config["shapes_dict"])
    else:
        built = False
    if built:
        layer._build_shapes_dict = config
        layer.built = True
    return bool(built)


# ---------------------------------------------------------------------------
# Legacy `.h5`
# ---------------------------------------------------------------------------


def _legacy_saving() -> Any:
    try:
        from keras.src.legacy.saving import saving_options, saving_utils
    except ImportError as err:
        missing = _missing("keras.src.legacy.saving")
        raise missing from err
    return saving_options, saving_utils


@contextlib.contextmanager
def keep_compile_config(model: Any) -> Iterator[None]:
    """Undo Keras's legacy `.h5` writer popping "optimizer" out of the model's
    own compile config, so that a later `.keras` save keeps the optimizer.

    `keras.src.legacy.saving.saving_utils.model_metadata` pops it from
    `model._compile_config.config` (Keras 3.8.0 and still 3.15.1). Missing
    (no `_compile_config`): nothing to restore.
    """
    compile_config = getattr(model, "_compile_config", None)
    config = getattr(compile_config, "config", None)
    kept = dict(config) if isinstance(config, dict) else None
    try:
        yield
    finally:
        if isinstance(config, dict) and kept is not None:
            config.clear()
            config.update(kept)


def compile_config_dict(model: Any) -> dict[str, Any] | None:
    """The live dict of arguments `compile` was called with
    (`model._compile_config.config`, Keras 3.8.0-3.15.1). Missing: None, and
    callers leave the compile config alone."""
    config = getattr(getattr(model, "_compile_config", None), "config", None)
    return config if isinstance(config, dict) else None


def compile_skipped_on_load(cls: type) -> bool:
    """Whether Keras's loader leaves a model of class `cls` uncompiled from
    its saved compile config: `Trainer.compile_from_config` only warns and
    returns when the class overrides `compile()` (keras-hub's `Task` does),
    unless the class also overrides `compile_from_config` (Keras
    3.8.0-3.15.1, compared by identity with
    `keras.src.trainers.trainer.Trainer`'s methods, as Keras does). Missing:
    compared with `keras.Model`'s own methods.
    """
    try:
        from keras.src.trainers.trainer import Trainer
    except ImportError:
        import keras

        trainer: Any = keras.Model
    else:
        trainer = Trainer
    compile_method = getattr(cls, "compile", None)
    from_config = getattr(cls, "compile_from_config", None)
    return bool(
        compile_method is not getattr(trainer, "compile", None)
        and from_config is getattr(trainer, "compile_from_config", None)
    )


def wrapper_fn_kwargs(obj: Any) -> dict[str, Any] | None:
    """The keyword arguments a Keras `LossFunctionWrapper`/`MeanMetricWrapper`
    passes to its function (`obj._fn_kwargs`, Keras 3.8.0-3.15.1), some of
    which its `get_config` leaves out (Huber's `delta`). Missing: None, and
    those settings are not added to the saved config."""
    kwargs = getattr(obj, "_fn_kwargs", None)
    return kwargs if isinstance(kwargs, dict) else None


def legacy_model_metadata(model: Any, include_optimizer: bool) -> dict[str, Any]:
    """What Keras's legacy `.h5` writer stores as file attributes: the model
    config in the legacy style, the training config, versions.

    `keras.src.legacy.saving.saving_utils.model_metadata` inside
    `saving_options.keras_option_scope(use_legacy_config=True)` (Keras
    3.8.0-3.15.1), under `keep_compile_config`. Missing: `FormatLimitError`,
    which says to use `.keras`.
    """
    saving_options, saving_utils = _legacy_saving()
    with keep_compile_config(model):
        with saving_options.keras_option_scope(use_legacy_config=True):
            return saving_utils.model_metadata(model, include_optimizer)


def legacy_model_from_config(
    config: dict[str, Any], custom_objects: dict[str, Any]
) -> Any:
    """Build a model from a legacy `.h5` model config (edits `config`).

    `keras.src.legacy.saving.saving_utils.model_from_config` (Keras
    3.8.0-3.15.1); call it inside `legacy_loading_scope`. Missing:
    `FormatLimitError`.
    """
    _, saving_utils = _legacy_saving()
    return saving_utils.model_from_config(config, custom_objects=custom_objects)


@contextlib.contextmanager
def legacy_loading_scope(safe_mode: bool = True) -> Iterator[None]:
    """Legacy-style configs, with Keras's safe mode on (unless the user passed
    `safe_mode=False`, Keras's explicit opt-in), for the block.

    `saving_options.keras_option_scope(use_legacy_config=True)` and
    `keras.src.saving.serialization_lib.SafeModeScope(True)` (Keras
    3.8.0-3.15.1). Missing: `FormatLimitError`; never a load without
    safe mode.
    """
    saving_options, _ = _legacy_saving()
    try:
        from keras.src.saving.serialization_lib import SafeModeScope
    except ImportError as err:
        missing = _missing("safe mode scope (SafeModeScope)")
        raise missing from err
    with saving_options.keras_option_scope(use_legacy_config=True):
        with SafeModeScope(safe_mode):
            yield


# Keras modules whose layers override `save_own_variables`/`load_own_variables`
# only for what is already a weight (quantization, LoRA) or for the model's
# own bookkeeping (Keras 3.8.0-3.15.1). Missing modules: the hooks are taken
# as real state, which `.h5` then stores too (safe, a little larger).
_WEIGHT_HOOK_MODULES = (
    "keras.src.layers.core.",
    "keras.src.layers.convolutional.",
    "keras.src.models.",
    "keras.src.engine.",
)


def hooks_hold_only_weights(module: str) -> bool:
    """Whether a class from `module` overrides Keras's own-state hooks only for
    state that is already stored as weights."""
    return module.startswith(_WEIGHT_HOOK_MODULES)


def process_safe_mode() -> bool:
    """False when the user turned Keras's safe mode off for the process
    (`keras.config.enable_unsafe_deserialization()`), else True.

    `keras.src.saving.serialization_lib.in_safe_mode()` (Keras 3.8.0-3.15.1),
    which is None unless a scope or that call set it. Missing: True (safe).
    """
    try:
        from keras.src.saving.serialization_lib import in_safe_mode
    except ImportError:
        return True
    return in_safe_mode() is not False


def legacy_json_default(obj: Any) -> Any:
    """The JSON form Keras's legacy `.h5` writer gives a value `json` cannot
    encode (a dtype, a NumPy value, a function: its name).

    `keras.src.legacy.saving.json_utils.get_json_type` (Keras 3.8.0-3.15.1).
    Missing: the same rules for the common cases, written out.
    """
    try:
        from keras.src.legacy.saving import json_utils
    except ImportError:
        return _json_default(obj)
    return json_utils.get_json_type(obj)


def _json_default(obj: Any) -> Any:
    import numpy as np

    if hasattr(obj, "get_config"):
        return {"class_name": type(obj).__name__, "config": obj.get_config()}
    if isinstance(obj, np.ndarray):
        return obj.tolist() if obj.ndim else obj.item()
    if isinstance(obj, np.generic):
        return obj.item()
    if callable(obj) and hasattr(obj, "__name__"):
        return obj.__name__
    if hasattr(obj, "name") and isinstance(obj.name, str):  # a dtype
        return obj.name
    message = f"Not JSON serializable: {type(obj).__name__}"
    raise TypeError(message)


def legacy_weights(layer: Any) -> list[Any]:
    """A layer's weights in legacy `.h5` order: trainable, then non-trainable.

    What `keras.src.legacy.saving.legacy_h5_format._legacy_weights` returns
    (Keras 3.8.0-3.15.1), from public attributes.
    """
    return list(layer.trainable_weights) + list(layer.non_trainable_weights)


# HDF5 limits an object header (all of a group's attributes) to 64 KiB.
_HDF5_OBJECT_HEADER_LIMIT = 64512


def save_h5_attributes(group: Any, name: str, data: list[Any]) -> None:
    """Store a list of names as attribute `name` of an HDF5 group, split into
    `name0`, `name1`, ... when it is too large for one attribute.

    The layout of Keras's `legacy_h5_format.save_attributes_to_hdf5_group`
    (Keras 3.8.0-3.15.1), written out: Keras reads files written with it.
    """
    import numpy as np

    too_large = [x for x in data if len(x) > _HDF5_OBJECT_HEADER_LIMIT]
    if too_large:
        message = (
            f"Cannot save attribute {name!r}: expected every item shorter than "
            f"{_HDF5_OBJECT_HEADER_LIMIT} bytes. Received: {too_large[:3]}. "
            "Use shorter layer and weight names, or save as `.keras`."
        )
        raise RuntimeError(message)
    array = np.asarray(data)
    chunks = 1
    split = np.array_split(array, chunks)
    while any(x.nbytes > _HDF5_OBJECT_HEADER_LIMIT for x in split):
        chunks += 1
        split = np.array_split(array, chunks)
    if chunks > 1:
        for index, chunk in enumerate(split):
            group.attrs[f"{name}{index}"] = chunk
    else:
        group.attrs[name] = data


def load_h5_attributes(group: Any, name: str) -> list[Any]:
    """Read what `save_h5_attributes` (or Keras's equivalent) stored."""

    def decoded(values: Any) -> list[Any]:
        return [v.decode("utf8") if hasattr(v, "decode") else v for v in values]

    if name in group.attrs:
        return decoded(group.attrs[name])
    data: list[Any] = []
    index = 0
    while f"{name}{index}" in group.attrs:
        data.extend(decoded(group.attrs[f"{name}{index}"]))
        index += 1
    return data


# ---------------------------------------------------------------------------
# Deferred variable initialization (the fast `.h5` reader)
# ---------------------------------------------------------------------------

# Keras's per-thread list of variables created in a StatelessScope and not
# yet initialized (`keras.src.backend.common.global_state`).
_UNINITIALIZED = "uninitialized_variables"


def _global_state() -> Any:
    try:
        from keras.src.backend.common import global_state
    except ImportError:
        return None
    return global_state


def can_defer_initialization() -> bool:
    """Whether variables can be created uninitialized and given a value later.

    Needs Keras's global-state list of uninitialized variables and
    `Variable._deferred_initialize` (Keras 3.8.0-3.15.1). Missing: False, and
    `.h5` loading builds, initializes and assigns, as Keras does.
    """
    import keras

    return _global_state() is not None and hasattr(
        keras.Variable, "_deferred_initialize"
    )


def in_stateless_scope() -> bool:
    """Whether a `keras.StatelessScope` is active.

    `keras.src.backend.common.stateless_scope.in_stateless_scope` (Keras
    3.8.0-3.15.1). Missing: True, so nothing is deferred.
    """
    try:
        from keras.src.backend.common.stateless_scope import (
            in_stateless_scope as active,
        )
    except ImportError:
        return True
    return bool(active())


def uninitialized_variables() -> list[Any]:
    """Keras's list of variables awaiting deferred initialization."""
    state = _global_state()
    if state is None:
        return []
    return list(state.get_global_attribute(_UNINITIALIZED, []) or [])


def set_uninitialized_variables(variables: list[Any]) -> None:
    """Replace Keras's list of variables awaiting deferred initialization."""
    state = _global_state()
    if state is not None:
        state.set_global_attribute(_UNINITIALIZED, variables)


def initialize_deferred(variable: Any, initializer: Any = None) -> None:
    """Create the value of a variable whose initialization was deferred, with
    `initializer` instead of its own if given.

    `Variable._initializer` and `Variable._deferred_initialize()` (Keras
    3.8.0-3.15.1); only called when `can_defer_initialization()`.
    """
    if initializer is not None:
        variable._initializer = initializer
    variable._deferred_initialize()


# ---------------------------------------------------------------------------
# Keras 2 files (used by _keras2)
# ---------------------------------------------------------------------------

# The module Keras 3 records for a Functional model's class in a config
# (Keras 3.8.0-3.15.1); Keras 2 files name `tf_keras.src.engine.functional`.
FUNCTIONAL_MODULE = "keras.src.models.functional"


def is_keras2_engine_module(module: str) -> bool:
    """Whether a config's `module` is Keras 2's engine package (`keras.src.engine`
    in `tf.keras` 2.13-2.15), which Keras 3 does not have."""
    return module.startswith("keras.src.engine")


# Where Keras 3's optimizers keep each kind of slot, by optimizer class and the
# role Keras 2 names in a slot's path (`Adam/m/dense/kernel:0`): private lists
# of variables, one per trainable variable (Keras 3.8.0-3.15.1; SGD's is
# public). Missing: `optimizer_slots` returns [] and the caller warns that the
# slots were not restored.
OPTIMIZER_SLOT_ATTRIBUTES: dict[str, dict[str, str]] = {
    "Adam": {"m": "_momentums", "v": "_velocities", "vhat": "_velocity_hats"},
    "AdamW": {"m": "_momentums", "v": "_velocities", "vhat": "_velocity_hats"},
    "SGD": {"m": "momentums"},
    "RMSprop": {
        "velocity": "_velocities",
        "momentum": "_momentums",
        "average_gradient": "_average_gradients",
    },
    "Nadam": {"m": "_momentums", "v": "_velocities"},
    "Adagrad": {"accumulator": "_accumulators"},
    "Adamax": {"m": "_m", "u": "_u"},
    "Adadelta": {
        "accumulated_grad": "_accumulated_grads",
        "accumulated_delta_var": "_accumulated_delta_vars",
    },
    "Ftrl": {"accumulator": "_accumulators", "linear": "_linears"},
    "Lion": {"m": "_momentums"},
    "Adafactor": {"r": "_r", "c": "_c", "v": "_v"},
}


def optimizer_slots(optimizer: Any, attribute: str) -> list[Any]:
    """The slot variables a built Keras 3 optimizer keeps in `attribute` (one of
    `OPTIMIZER_SLOT_ATTRIBUTES`'s values); [] when it has none."""
    return list(getattr(optimizer, attribute, None) or [])


def nadam_momentum_product(optimizer: Any) -> Any:
    """Nadam's running product of momentum-schedule values, a variable
    (`Nadam._u_product`, Keras 3.8.0-3.15.1). Missing: `FormatLimitError`
    naming it, so a Keras 2 Nadam file is refused rather than resumed wrong."""
    product = getattr(optimizer, "_u_product", None)
    if product is None:
        what = "Nadam's momentum product (Nadam._u_product)"
        raise _missing(what)
    return product


# ---------------------------------------------------------------------------
# Keras's built-in functions saved by name
# ---------------------------------------------------------------------------

# Keras's own modules whose functions it saves with module "builtins" and a
# bare name (Keras 3.15.1, `serialization_lib.BUILTIN_MODULES`).
_BUILTIN_MODULES = (
    "activations",
    "constraints",
    "initializers",
    "losses",
    "metrics",
    "optimizers",
    "regularizers",
)


def keras_builtin_function(name: str) -> Any:
    """The Keras function `keras.<module>.<name>` that Keras's loader finds for
    a function saved with module "builtins" (`relu`, `mean_squared_error`), or
    None.

    `keras.src.api_export.get_symbol_from_name` (Keras 3.11.3-3.15.1).
    Missing: a look-up in the public modules' namespaces (`vars`, never
    `getattr`, so a name from a file reaches no module `__getattr__`).
    """
    import keras

    try:
        from keras.src.api_export import get_symbol_from_name
    except ImportError:
        get_symbol_from_name = None
    for module in _BUILTIN_MODULES:
        if get_symbol_from_name is not None:
            found = get_symbol_from_name(f"keras.{module}.{name}")
        else:
            found = vars(vars(keras).get(module, object())).get(name)
        if found is not None and callable(found):
            return found
    return None
