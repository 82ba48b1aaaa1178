"""The settings of one `assert_roundtrip` call, as every check receives them."""

from __future__ import annotations

from dataclasses import dataclass


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
