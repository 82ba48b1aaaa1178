"""keras-serializable: custom Keras objects that save and reload correctly.

Decorate a class with `register_keras_serializable` or subclass one of the
`Serializable*` bases, and it saves and reloads in `.keras` and `.h5` with no
hand-written `get_config` and no `custom_objects`.
"""

from __future__ import annotations

import contextlib as _contextlib
import importlib.abc as _abc
import importlib.machinery as _machinery
import importlib.metadata as _metadata
import importlib.util as _util
import sys as _sys
import typing as _typing

if _typing.TYPE_CHECKING:
    from . import ctc as ctc
    from ._bases import SerializableConstraint as SerializableConstraint
    from ._bases import SerializableInitializer as SerializableInitializer
    from ._bases import SerializableLayer as SerializableLayer
    from ._bases import (
        SerializableLearningRateSchedule as SerializableLearningRateSchedule,
    )
    from ._bases import SerializableLoss as SerializableLoss
    from ._bases import SerializableMetric as SerializableMetric
    from ._bases import SerializableModel as SerializableModel
    from ._bases import SerializableRegularizer as SerializableRegularizer
    from ._errors import ConfigDecodeError as ConfigDecodeError
    from ._errors import ConfigVersionError as ConfigVersionError
    from ._errors import FormatLimitError as FormatLimitError
    from ._errors import MissingClassError as MissingClassError
    from ._errors import ModelFileError as ModelFileError
    from ._errors import RegistrationError as RegistrationError
    from ._errors import SerializableError as SerializableError
    from ._errors import UnknownConfigKeyError as UnknownConfigKeyError
    from ._errors import UnserializableArgumentError as UnserializableArgumentError
    from ._files import load_model as load_model
    from ._files import save_model as save_model
    from ._register import register_keras_serializable as register_keras_serializable
    from ._roundtrip import RoundtripError as RoundtripError
    from ._roundtrip import RoundtripReport as RoundtripReport
    from ._roundtrip import assert_roundtrip as assert_roundtrip
    from ._state import add_state_weight as add_state_weight

# Keras is imported when the library is first used, not by `import
# serializable` alone, so the `serializable` command's `--help` and `--version`
# (and a project that picks its backend after importing us) do not pay for it.
# Where each public name lives:
_EXPORTS = {
    "ctc": ".ctc",
    "SerializableConstraint": "._bases",
    "SerializableInitializer": "._bases",
    "SerializableLayer": "._bases",
    "SerializableLearningRateSchedule": "._bases",
    "SerializableLoss": "._bases",
    "SerializableMetric": "._bases",
    "SerializableModel": "._bases",
    "SerializableRegularizer": "._bases",
    "ConfigDecodeError": "._errors",
    "ConfigVersionError": "._errors",
    "FormatLimitError": "._errors",
    "MissingClassError": "._errors",
    "ModelFileError": "._errors",
    "RegistrationError": "._errors",
    "SerializableError": "._errors",
    "UnknownConfigKeyError": "._errors",
    "UnserializableArgumentError": "._errors",
    "load_model": "._files",
    "save_model": "._files",
    "register_keras_serializable": "._register",
    "RoundtripError": "._roundtrip",
    "RoundtripReport": "._roundtrip",
    "assert_roundtrip": "._roundtrip",
    "add_state_weight": "._state",
}


def _load() -> None:
    """Import the whole library, Keras included, and bind the public names.

    `ctc` is imported for its registrations: once this ran, any file that
    holds the library's own classes (CTCLayer, CTCDecoder, ...) loads.
    """
    import importlib

    # Keras first: where the hook below is installed, importing Keras runs
    # this function to its end before anything else here is imported.
    import keras  # noqa: F401

    namespace = globals()
    for name, module in _EXPORTS.items():
        value = importlib.import_module(module, __name__)
        namespace[name] = value if name == "ctc" else getattr(value, name)


def __getattr__(name: str) -> _typing.Any:
    if name in _EXPORTS:
        _load()
        return globals()[name]
    message = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(message)


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


class _AfterKeras(_abc.MetaPathFinder):
    """Load the library right after Keras is imported.

    `import serializable` before `import keras` must still register the
    library's classes before Keras loads a file that names them, as it did
    when `import serializable` imported Keras itself.
    """

    def find_spec(
        self, name: str, path: _typing.Any = None, target: _typing.Any = None
    ) -> _typing.Any:
        if name != "keras":
            return None
        with _contextlib.suppress(ValueError):
            _sys.meta_path.remove(self)
        spec = _machinery.PathFinder.find_spec(name, path)
        loader: _typing.Any = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        execute = loader.exec_module

        def exec_module(module: _typing.Any) -> None:
            execute(module)
            # A failure here must not break `import keras`; the first use of
            # the library then raises it.
            with _contextlib.suppress(Exception):
                _load()

        loader.exec_module = exec_module
        return spec


if "keras" in _sys.modules:
    _load()
elif _util.find_spec("keras") is not None:
    _sys.meta_path.insert(0, _AfterKeras())

try:
    __version__ = _metadata.version("keras-serializable")
except _metadata.PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"

# The public names: what `_EXPORTS` binds (`ctc` is a sub-namespace, not in
# `__all__`), and the version.
__all__ = sorted({*_EXPORTS, "__version__"} - {"ctc"})
