"""The notes a save keeps beside Keras's config, in both formats.

Keras's config leaves out what a reload needs to be exact or to say what is
missing; `manifest` records it (in `.keras` in the archive's comment, in
`.h5` as the `serializable_manifest` attribute) and `restore_notes` puts
back what the loaded model lacks:

* the module of every custom class the config names (registered name ->
  module), so a class that is not imported can be named with where it lived;
* the registered name of the top-level class (subclassed-models-in-h5);
* the backend it was saved on, and whether the outputs are a tuple
  (docs/pitfalls.md#tuples);
* the sub-layers frozen after construction, which no config holds
  (docs/pitfalls.md#duplicate-weight-names).
"""

from __future__ import annotations

from typing import Any

import keras

from . import _configwalk, _keras_compat, _registry


def manifest(model: keras.Model, config: Any = None) -> dict[str, Any]:
    """Registered name -> module of every custom class the model uses, plus
    notes Keras does not keep: the registered top-level class and whether the
    model's outputs are a tuple (docs/pitfalls.md#tuples).

    `config` is the model's config as the caller already serialized it (the
    `.keras` `config.json`, or the `.h5` metadata with its training config);
    without it the model is serialized again here.
    """
    if config is None:
        try:
            config = keras.saving.serialize_keras_object(model)
        except Exception:
            config = {}
    top = _registry.registered_name(type(model))
    manifest: dict[str, Any] = {}
    for name in [*_registered_strings(config), *([top] if top else [])]:
        obj = _registry.registered_object(name)
        module = getattr(obj, "__module__", None)
        if module and module != "__main__":
            manifest[name] = module
    if top:
        manifest["__top__"] = top
    manifest["__backend__"] = keras.backend.backend()
    if isinstance(_keras_compat.outputs_structure(model), tuple):
        manifest["__outputs__"] = "tuple"
    frozen = [
        layer.path
        for layer in _keras_compat.flatten_layers(model)
        if not layer.trainable
    ]
    if frozen:
        manifest["__frozen__"] = frozen
    return manifest


def restore_notes(model: keras.Model, notes: dict[str, Any]) -> None:
    """Put back what the notes record: tuple outputs come back as tuples.

    See docs/pitfalls.md#tuples.
    """
    if notes.get("__outputs__") == "tuple":
        structure = _keras_compat.outputs_structure(model)
        if isinstance(structure, list):
            _keras_compat.set_outputs_structure(model, tuple(structure))
    # A sub-layer frozen after construction is in no config
    # (docs/pitfalls.md#duplicate-weight-names).
    frozen = set(notes.get("__frozen__", ()))
    if frozen:
        for layer in _keras_compat.flatten_layers(model):
            if layer.path in frozen and layer.trainable:
                layer.trainable = False


def _registered_strings(config: Any) -> list[str]:
    """Every string in a config that is a registered name, in order.

    Both config styles name a custom object by its registered name: the
    `.keras` style under "registered_name" (and "config" for functions), the
    legacy `.h5` style as "class_name" or as a bare string for functions.
    """
    registered = _registry.custom_objects()
    return [
        item
        for item in _configwalk.walk(config)
        if isinstance(item, str) and item in registered
    ]
