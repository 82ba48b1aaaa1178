"""Small wrappers around Keras internals (`keras.src`) and private attributes.

Each function notes the Keras version it was checked against and what it does
when the internal is missing, so a Keras upgrade fails in one place.
"""

from __future__ import annotations

from typing import Any

# Keras's own modules whose functions it saves with module "builtins" and a
# bare name (checked: Keras 3.15.1, `serialization_lib.BUILTIN_MODULES`).
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
    a function saved with module "builtins", or None.

    Checked: Keras 3.15.1 (`keras.src.api_export.get_symbol_from_name`).
    Fallback: `getattr` on the public modules.
    """
    try:
        from keras.src.api_export import get_symbol_from_name
    except ImportError:  # pragma: no cover - other Keras versions
        get_symbol_from_name = None
    for module in _BUILTIN_MODULES:
        if get_symbol_from_name is not None:
            found = get_symbol_from_name(f"keras.{module}.{name}")
        else:  # pragma: no cover
            import keras

            found = getattr(getattr(keras, module, None), name, None)
        if found is not None and callable(found):
            return found
    return None
