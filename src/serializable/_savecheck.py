"""Checks and small repairs made while saving, so that no file is written that
reloads into a different model, or cannot reload at all.

* Keras's built-in losses and metrics whose `get_config` drops a setting their
  constructor takes (`Huber(delta=...)`, `CosineSimilarity(axis=...)`,
  `SparseCategoricalCrossentropy(axis=...)`,
  `SparseTopKCategoricalAccuracy(from_sorted_ids=...)`): the setting is added
  to the saved config, which Keras's own loader passes back to the
  constructor, so the file stays readable by plain Keras too.
* A hand-written `get_config` that omits an argument `__init__` requires: the
  file could never be loaded, so saving is refused.
* A subclassed model never called itself (a custom `train_step` that calls
  its sublayers) has weights but no recorded input shape: refused, with how
  to build it.
* A layer shared by two functional sub-models reloads as two layers, one
  without weights: refused.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from typing import Any

import keras

from . import _configwalk, _keras_compat, _registry
from ._errors import FormatLimitError, UnserializableArgumentError, docs_url

__all__ = ["check", "settings_recorded"]


def _compiled_objects(model: keras.Model) -> list[Any]:
    config = _keras_compat.compile_config_dict(model)
    if config is None:
        return []
    parts = [config.get(key) for key in ("loss", "metrics", "weighted_metrics")]
    return [
        item
        for item in _configwalk.walk(parts)
        if isinstance(item, (keras.losses.Loss, keras.metrics.Metric))
    ]


def _dropped_settings(obj: Any) -> dict[str, Any]:
    """Settings a Keras wrapper loss/metric holds but its config leaves out."""
    kwargs = _keras_compat.wrapper_fn_kwargs(obj)
    if not isinstance(kwargs, dict) or not _registry.is_keras_own(type(obj)):
        return {}
    config = obj.get_config()
    params = inspect.signature(type(obj).__init__).parameters
    return {
        key: value
        for key, value in kwargs.items()
        if key not in config and key in params
    }


@contextlib.contextmanager
def settings_recorded(model: keras.Model) -> Iterator[None]:
    """While saving, compiled Keras losses and metrics write every setting."""
    patched: list[Any] = []
    for obj in _compiled_objects(model):
        dropped = _dropped_settings(obj)
        if not dropped:
            continue
        original = obj.get_config

        def get_config(original: Any = original, dropped: Any = dropped) -> Any:
            return {**original(), **dropped}

        obj.get_config = get_config
        patched.append(obj)
    try:
        yield
    finally:
        for obj in patched:
            del obj.get_config


def _custom_objects(model: keras.Model) -> list[Any]:
    layers = list(_keras_compat.flatten_layers(model, include_self=True))
    return [*layers, *_compiled_objects(model)]


def _check_built(model: keras.Model) -> None:
    """A subclassed model whose layers hold weights but which was never called
    itself (a custom `train_step` calling its sublayers) records no input
    shape: Keras reloads it with no weights and a fresh optimizer."""
    for obj in _keras_compat.flatten_layers(model, include_self=True):
        if not isinstance(obj, keras.Model) or obj.built or _functional(obj):
            continue
        if not obj.weights:
            continue
        message = (
            f"Cannot save model '{obj.name}': expected a built model. Received: "
            f"{type(obj).__name__} with {len(obj.weights)} weights in its layers "
            "but never called itself (its custom train_step or code calls the "
            "layers directly), so the file would record no input shape and "
            "reload without weights. Call the model once on a batch, e.g. "
            "`model(x[:1])`, or `model.build(input_shape)`, before saving."
        )
        raise FormatLimitError(message)


def _check_shared(model: keras.Model) -> None:
    """A layer listed in two functional models' configs reloads as two layers,
    and Keras stores its weights once: the second copy cannot be filled.

    A layer without weights is not refused: its copies are identical (the
    `Input` layers a keras-hub task model shares with its backbone). Nor is a
    functional model whose class has its own `from_config` (keras-hub's
    `Task` and `Backbone`): its constructor, not its layer list, rebuilds it,
    and shares the layer again (a causal LM's tied token embedding)."""
    containers: dict[int, list[str]] = {}
    names: dict[int, str] = {}
    for obj in _keras_compat.flatten_layers(model, include_self=True):
        if not _functional(obj) or _user_defined(type(obj), "from_config"):
            continue
        for layer in obj.layers:
            if not layer.weights:
                continue
            holders = containers.setdefault(id(layer), [])
            if obj.name not in holders:
                holders.append(obj.name)
            names[id(layer)] = layer.name
    shared = {names[key]: holders for key, holders in containers.items()}
    shared = {name: holders for name, holders in shared.items() if len(holders) > 1}
    if not shared:
        return
    name, holders = next(iter(shared.items()))
    message = (
        f"Cannot save model '{model.name}': expected each layer to belong to one "
        f"functional model. Received: layer '{name}' shared by {holders}"
        f"{f' and {len(shared) - 1} more' if len(shared) > 1 else ''}; its "
        "config is written once per model, so it would reload as separate "
        "layers, one of them without weights. Build the shared part as one "
        "sub-model that both use, or write a subclassed model that holds the "
        "layer once. See " + docs_url("pitfalls", "shared-layers-tied-weights")
    )
    raise FormatLimitError(message)


def check(model: keras.Model) -> None:
    """Refuse, before writing, a model whose configs cannot rebuild it."""
    _check_built(model)
    _check_shared(model)
    for obj in _custom_objects(model):
        cls = type(obj)
        if _registry.is_keras_own(cls):
            continue
        if _user_defined(cls, "from_config"):
            continue  # their own from_config decides what it needs
        if not _user_defined(cls, "get_config"):
            continue
        if isinstance(obj, keras.Model) and _functional(obj):
            continue
        try:
            config = obj.get_config()
        except Exception:
            # Keras calls it only for layers whose parent serializes them
            # (keras-hub 0.32's LlamaTransformerDecoder.get_config raises, and
            # its backbone never calls it): a config Keras needs and cannot
            # get fails Keras's own save, with Keras's error.
            continue
        if not isinstance(config, dict):
            continue
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
        missing = [
            p.name
            for p in params
            if p.default is p.empty
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and p.name not in config
        ]
        if missing:
            message = (
                f"Cannot save {cls.__name__} '{getattr(obj, 'name', '?')}': expected "
                f"its get_config to return every argument __init__ requires. "
                f"Received: a config without {missing} (keys: {sorted(config)}). "
                f"The file could never be loaded. Add them to "
                f"{cls.__name__}.get_config, or drop get_config and let "
                "register_keras_serializable generate it. See "
                + docs_url("pitfalls", "constructor-arguments")
            )
            raise UnserializableArgumentError(message)


def _user_defined(cls: type, method: str) -> bool:
    """Whether a class of the user's (not Keras's, not generated) writes `method`."""
    from ._config import defines_own

    return defines_own(cls, method)


def _functional(model: keras.Model) -> bool:
    return _keras_compat.is_functional(model)
