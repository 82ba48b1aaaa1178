"""The settings of one `assert_roundtrip` call, and the run every check reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras
    import numpy as np

    from .snapshot import _Snapshot


@dataclass(frozen=True)
class Settings:
    """`assert_roundtrip`'s keyword arguments, checked, for the checks to read.

    `atol`/`rtol` bound outputs and loss/metric values; `fresh_process` also
    reloads each file in a new process; `check_training` runs one training
    step (None: when compiled); `using` is `"keras"` or `"serializable"`;
    `backends` are the installed backends to reload each file under.
    """

    atol: float
    rtol: float
    fresh_process: bool
    check_training: bool | None
    using: str
    backends: tuple[str, ...] = ()


@dataclass(frozen=True)
class Run:
    """What every format's reload is checked against, one per call.

    `model` is the model as saved (`kind` says what `obj` was: "model",
    "layer", "loss", ...); `inputs` the batch and `expected` the original's
    outputs on it; `targets` the user's targets (None: derived per format from
    `expected` with `rng`); `state` the original's state as saved.
    """

    model: keras.Model
    kind: str
    inputs: Any
    expected: Any
    targets: Any
    rng: np.random.Generator
    state: _Snapshot
    settings: Settings
