"""JAX-only helpers, used only when Keras runs on the JAX backend.

The one place in the library that imports JAX. It has no kernels of its own:

* `jit` compiles a backend-neutral `keras.ops` function with `jax.jit`, the
  way Keras's JAX trainer compiles a training step. Inside a compiled step
  (`fit`, `jax.jit`) this changes nothing, as a nested `jax.jit` is inlined.
  Called eagerly it matters a lot: `keras.ops.ctc_loss` on JAX is a
  `lax.scan` that is traced again on every eager call (~0.2 s at B=32,
  T=200, C=30), while the compiled function is traced once per input shape.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


def available() -> bool:
    """True when Keras runs on JAX (so JAX is importable)."""
    import keras

    return keras.backend.backend() == "jax"


@functools.cache
def jit(fn: Callable[..., Any], static_argnames: tuple[str, ...]) -> Any:
    """`jax.jit(fn)` with these arguments static, made once per function."""
    import jax

    return jax.jit(fn, static_argnames=static_argnames)
