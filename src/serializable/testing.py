"""Helpers for test suites: round-trip checks and the pieces they are made of.

`assert_roundtrip` is also available as `serializable.assert_roundtrip` and,
under pytest, as the `keras_roundtrip` fixture.

Example:

```python
import keras
from serializable.testing import assert_roundtrip, synthesize_inputs

model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
batch = synthesize_inputs(model)
report = assert_roundtrip(model, batch)
```
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._roundtrip import BackendNotInstalled as BackendNotInstalled
from ._roundtrip import FormatReport as FormatReport
from ._roundtrip import RoundtripError as RoundtripError
from ._roundtrip import RoundtripReport as RoundtripReport
from ._roundtrip import assert_roundtrip as assert_roundtrip
from ._roundtrip import registered_modules as registered_modules

__all__ = [
    "BackendNotInstalled",
    "FormatReport",
    "RoundtripError",
    "RoundtripReport",
    "assert_roundtrip",
    "registered_modules",
    "synthesize_inputs",
]


def synthesize_inputs(model: Any, seed: int = 0, batch: int = 4) -> Any:
    """Make a seeded input batch that matches `model`'s input specs.

    Float inputs are standard normal; integer and bool inputs are 0 or 1 (safe
    for embeddings and masks). Unknown dimensions other than the batch are 3.

    Args:
        model: A built Keras model.
        seed: Seed for the random values.
        batch: Batch size.

    Returns:
        One numpy array, or a list of them for a multi-input model.

    Example:

    ```python
    import keras
    from serializable.testing import synthesize_inputs

    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(1)])
    assert synthesize_inputs(model).shape == (4, 5)
    ```
    """
    from ._compare import synthesize_inputs as _synthesize

    return _synthesize(model, np.random.default_rng(seed), batch)
