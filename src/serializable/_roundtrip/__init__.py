"""`assert_roundtrip`: save, reload, and prove nothing was lost.

Every format is saved first, before the object is called, built or trained,
so each file holds what the user's own save would write. Each is then loaded
back with plain `keras.models.load_model` (no `custom_objects`), and compared
with the original: class, config (key by key; tuples told apart from lists
where the library generated the config), every weight by path, the number of
unique variables, outputs, compile state (loss and metric values on one
batch, not just their configs), optimizer state, and one identical training
step. Every problem found is collected and reported at once, grouped by
format, in a message a person can act on.

One concept a module:

- `api`: `assert_roundtrip` itself: arguments, the files, the verdict.
- `settings`: the call's settings, one frozen `Settings`, and `Run`, what
  every format's reload is checked against (model, batch, outputs, state).
- `report`: `FormatReport` and `RoundtripReport`.
- `probe`: any object (layer, loss, optimizer, ...) as a model to save.
- `snapshot`: the original's optimizer and seed state, put back after.
- `check`: one format: save, load, and every check on the reload.
- `training`: compile state, optimizer state, one training step.
- `fresh`, `child`: reloading in a new process (`python -m
  serializable._roundtrip.child`), under this backend or another.

The comparisons that need no file (class, configs, weights, outputs) are
`serializable._compare`, shared with `save_model(verify=True)`.

Nothing here is imported until a name is used: `child` runs in a new process
that must import the modules the saved classes came from before Keras.
"""

from __future__ import annotations

import importlib
import typing

if typing.TYPE_CHECKING:
    from .._compare import synthesize_inputs as synthesize_inputs
    from .._errors import RoundtripError as RoundtripError
    from .api import FORMATS as FORMATS
    from .api import BackendNotInstalled as BackendNotInstalled
    from .api import assert_roundtrip as assert_roundtrip
    from .fresh import registered_modules as registered_modules
    from .report import FormatReport as FormatReport
    from .report import RoundtripReport as RoundtripReport

# Where each name lives.
_EXPORTS = {
    "FORMATS": ".api",
    "BackendNotInstalled": ".api",
    "FormatReport": ".report",
    "RoundtripError": "serializable._errors",
    "RoundtripReport": ".report",
    "assert_roundtrip": ".api",
    "registered_modules": ".fresh",
    "synthesize_inputs": "serializable._compare",
}

__all__ = ["FormatReport", "RoundtripError", "RoundtripReport", "assert_roundtrip"]


def __getattr__(name: str) -> typing.Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value
        return value
    message = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(message)


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
