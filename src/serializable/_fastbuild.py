"""Variables created straight from saved values, for fast loads in both formats.

Building a model initializes every variable (a Glorot draw for each Dense
kernel) and a load then overwrites them all; for a large model the draws
cost more than reading the weights. `Unfilled` builds without them: the
`.h5` reader fills each variable from its saved array, and `.keras` loads
without an optimizer create theirs from what Keras's loader assigns.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import keras

from . import _backends, _keras_compat


class Unfilled:
    """Variables created without a value, which the file then gives one.

    Inside Keras's `StatelessScope` a new variable is recorded with its
    initializer but not initialized (Keras's deferred initialization), and an
    assignment is recorded instead of applied. A model built that way skips
    computing initial values the file overwrites at once: for a Dense kernel
    the Glorot draw costs more than reading the weights from disk. `fill`
    then creates a variable directly from its saved array, and `finish`
    creates the rest from what was assigned to them in the block (Keras's
    `.keras` loader assigns the saved values) or, for variables the file
    does not hold (seed generator states, metrics), with their own
    initializers, as an ordinary build would have.

    Only on TensorFlow, where it is tested (also under a `MirroredStrategy`,
    whose variables it creates as such); on other backends `creating` is a
    plain block and `fill` assigns.
    """

    def __init__(self) -> None:
        self._pending: dict[int, Any] = {}
        self._assigned: dict[int, tuple[Any, Any]] = {}

    def build(self, build: Callable[[], Any]) -> Any:
        """`build()` with its variables unfilled; if that fails (a layer needs a
        value while it is built: it makes a variable from an array, say), the
        ordinary way, so a real error is raised from an ordinary build."""
        deferred = False
        try:
            with self.creating() as deferred:
                return build()
        except Exception:
            if not deferred:
                raise
        self.discard()
        return build()

    @contextlib.contextmanager
    def creating(self, enabled: bool = True) -> Iterator[bool]:
        """Leave variables created in the block unfilled; yields whether it does."""
        tested = _backends.creates_unfilled_variables()
        tested = tested and _keras_compat.can_defer_initialization()
        if not (enabled and tested) or _keras_compat.in_stateless_scope():
            yield False
            return
        listed = _keras_compat.uninitialized_variables()
        known = {id(v) for v in listed}
        scope = _Recording()
        try:
            with scope:
                yield True
        finally:
            listed = _keras_compat.uninitialized_variables()
            for variable in listed:
                if id(variable) not in known:
                    self._pending[id(variable)] = variable
            # Ours to initialize: a later `initialize_all_variables` must not.
            kept = [v for v in listed if id(v) in known]
            _keras_compat.set_uninitialized_variables(kept)
            for ident, variable in scope.assigned.items():
                self._assigned[ident] = (variable, scope.get_current_value(variable))

    def fill(self, variable: Any, value: Any) -> None:
        """Give `variable` the saved `value`: created from it, or assigned."""
        self._assigned.pop(id(variable), None)
        if self._pending.pop(id(variable), None) is None:
            variable.assign(value)
            return
        _keras_compat.initialize_deferred(variable, _constant(value))

    def finish(self) -> None:
        """Give every variable left the value assigned to it in the block, or
        else (if it has none yet) its own initial value."""
        assigned, self._assigned = self._assigned, {}
        for variable, value in assigned.values():
            self.fill(variable, value)
        pending, self._pending = self._pending, {}
        for variable in pending.values():
            _keras_compat.initialize_deferred(variable)

    def discard(self) -> None:
        """Forget the variables and assignments of an abandoned build."""
        self._pending = {}
        self._assigned = {}


class _Recording(keras.StatelessScope):
    """A `StatelessScope` that remembers which variables were assigned."""

    def __init__(self) -> None:
        super().__init__(initialize_variables=False)
        self.assigned: dict[int, Any] = {}

    def add_update(self, update: Any) -> None:
        variable, _ = update
        self.assigned[id(variable)] = variable
        super().add_update(update)


def _constant(value: Any) -> Any:
    """An initializer that returns the saved value (cast as `assign` would)."""

    def initializer(shape: Any, dtype: Any = None) -> Any:
        if dtype is None or keras.backend.standardize_dtype(value.dtype) == dtype:
            return value
        return keras.ops.cast(value, dtype)

    return initializer
