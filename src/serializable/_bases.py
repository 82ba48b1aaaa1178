"""Base classes that give every subclass a generated config and registration.

Subclassing one of these is the same as decorating the subclass with
`register_keras_serializable`: the class is registered under
`"<package>>ClassName"` and, unless it writes its own `get_config`, gets one
generated from its `__init__`. Choose the package per class:

    class Scale(SerializableLayer, package="my_project"): ...

The default package is the top-level package of the module that defines the
class (`"my_project"` for `my_project.layers`), or `"Custom"` for classes
defined in `__main__`. Pass `register=False` for an abstract intermediate base.
"""

from __future__ import annotations

from typing import Any

import keras

from . import _config, _keras_compat
from ._register import register_keras_serializable

__all__ = [
    "SerializableConstraint",
    "SerializableInitializer",
    "SerializableLayer",
    "SerializableLearningRateSchedule",
    "SerializableLoss",
    "SerializableMetric",
    "SerializableModel",
    "SerializableRegularizer",
    "default_package",
]


def default_package(cls: type) -> str:
    """The package a base-class subclass is registered under by default."""
    module = cls.__module__ or ""
    top = module.split(".", 1)[0]
    return "Custom" if top in ("", "__main__", "builtins") else top


def _register_subclass(
    cls: type, package: str | None, name: str | None, register: bool
) -> None:
    if register:
        register_keras_serializable(package=package or default_package(cls), name=name)(
            cls
        )
    else:
        _config.install(cls)


class _RegisterOnSubclass:
    """Mixin: register each subclass (keywords `package`, `name`, `register`)."""

    def __init_subclass__(
        cls,
        *,
        package: str | None = None,
        name: str | None = None,
        register: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__module__ == __name__:
            return  # the base classes themselves are installed below, unregistered
        _register_subclass(cls, package, name, register)


class SerializableLayer(_RegisterOnSubclass, keras.layers.Layer):
    """A `keras.layers.Layer` whose subclasses save and reload with no boilerplate.

    Subclasses are registered (package: see the module docs) and get
    `get_config`/`from_config` generated from `__init__`.

    Example:

    ```python
    import keras
    from serializable import SerializableLayer

    class Scale(SerializableLayer, package="my_project"):
        def __init__(self, factor=2.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x):
            return x * self.factor
    ```
    """


class SerializableModel(_RegisterOnSubclass, keras.Model):
    """A `keras.Model` whose subclasses save and reload in `.keras` and `.h5`.

    Works for subclassed models (layers as attributes, a `call` method) and for
    Functional subclasses that build a graph in `__init__` and pass
    `inputs`/`outputs` to `super().__init__` (their own constructor arguments
    are kept: see
    [functional-subclass-arguments](https://keras-serializable.github.io/keras-serializable/pitfalls/#functional-subclass-arguments)).

    Example:

    ```python
    import keras
    from serializable import SerializableModel

    class MLP(SerializableModel, package="my_project"):
        def __init__(self, hidden=(32, 16), **kwargs):
            super().__init__(**kwargs)
            self.blocks = [keras.layers.Dense(n, activation="relu") for n in hidden]
            self.head = keras.layers.Dense(1)

        def call(self, x):
            for block in self.blocks:
                x = block(x)
            return self.head(x)
    ```
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if _keras_compat.functional_init_arguments(args, kwargs):
            _make_functional(type(self))
        super().__init__(*args, **kwargs)


_FUNCTIONAL_BASES: dict[type, type] = {}


def _make_functional(leaf: type) -> None:
    """Put `Functional` into `leaf`'s hierarchy without touching shared bases.

    Keras turns a `Model` subclass into a Functional one by rewriting the
    `__bases__` of *every* class up to `Model`, which would turn
    `SerializableModel` itself (and so every other subclass) Functional.
    Only `leaf`'s own chain is rewritten here, before Keras looks.
    """
    Functional = _keras_compat.functional_class()
    if issubclass(leaf, Functional):
        return
    for klass in leaf.__mro__:
        if SerializableModel in klass.__bases__:
            functional_base = _FUNCTIONAL_BASES.get(SerializableModel)
            if functional_base is None:
                functional_base = type(
                    "SerializableFunctional",
                    (SerializableModel, Functional),
                    {"__module__": __name__},
                    register=False,
                )
                _FUNCTIONAL_BASES[SerializableModel] = functional_base
            klass.__bases__ = tuple(
                functional_base if base is SerializableModel else base
                for base in klass.__bases__
            )
            return


class SerializableLoss(_RegisterOnSubclass, keras.losses.Loss):
    """A `keras.losses.Loss` whose constructor arguments are saved.

    See [losses-metrics-schedules](https://keras-serializable.github.io/keras-serializable/pitfalls/#losses-metrics-schedules).

    Keras saves only `name` and `reduction` of a custom loss unless you write
    `get_config`; subclasses of this class save every `__init__` argument.

    Example:

    ```python
    import keras
    from serializable import SerializableLoss

    class PowerLoss(SerializableLoss, package="my_project"):
        def __init__(self, power=2, **kwargs):
            super().__init__(**kwargs)
            self.power = power

        def call(self, y_true, y_pred):
            return keras.ops.mean(keras.ops.abs(y_true - y_pred) ** self.power, -1)
    ```
    """


class SerializableMetric(_RegisterOnSubclass, keras.metrics.Metric):
    """A `keras.metrics.Metric` whose constructor arguments are saved.

    See [losses-metrics-schedules](https://keras-serializable.github.io/keras-serializable/pitfalls/#losses-metrics-schedules).

    Example:

    ```python
    import keras
    from serializable import SerializableMetric

    class AboveThreshold(SerializableMetric, package="my_project"):
        def __init__(self, threshold=0.5, **kwargs):
            super().__init__(**kwargs)
            self.threshold = threshold
            self.count = self.add_variable((), initializer="zeros", name="count")

        def update_state(self, y_true, y_pred, sample_weight=None):
            hits = keras.ops.sum(keras.ops.cast(y_pred > self.threshold, "float32"))
            self.count.assign_add(hits)

        def result(self):
            return self.count
    ```
    """


class SerializableLearningRateSchedule(
    _RegisterOnSubclass, keras.optimizers.schedules.LearningRateSchedule
):
    """A learning-rate schedule that saves with its optimizer, no `get_config` needed.

    Example:

    ```python
    import keras
    from serializable import SerializableLearningRateSchedule

    class Warmup(SerializableLearningRateSchedule, package="my_project"):
        def __init__(self, peak=1e-3, steps=100):
            self.peak = peak
            self.steps = steps

        def __call__(self, step):
            step = keras.ops.cast(step, "float32")
            return self.peak * keras.ops.minimum(1.0, step / self.steps)
    ```
    """


class SerializableInitializer(_RegisterOnSubclass, keras.initializers.Initializer):
    """A `keras.initializers.Initializer` with a generated config.

    Example:

    ```python
    import keras
    from serializable import SerializableInitializer

    class Constant2(SerializableInitializer, package="my_project"):
        def __init__(self, value=2.0):
            self.value = value

        def __call__(self, shape, dtype=None):
            return keras.ops.full(shape, self.value, dtype=dtype)
    ```
    """


class SerializableRegularizer(_RegisterOnSubclass, keras.regularizers.Regularizer):
    """A `keras.regularizers.Regularizer` with a generated config.

    Example:

    ```python
    import keras
    from serializable import SerializableRegularizer

    class L1(SerializableRegularizer, package="my_project"):
        def __init__(self, strength=0.01):
            self.strength = strength

        def __call__(self, x):
            return self.strength * keras.ops.sum(keras.ops.abs(x))
    ```
    """


class SerializableConstraint(_RegisterOnSubclass, keras.constraints.Constraint):
    """A `keras.constraints.Constraint` with a generated config.

    Example:

    ```python
    import keras
    from serializable import SerializableConstraint

    class Clip(SerializableConstraint, package="my_project"):
        def __init__(self, limit=1.0):
            self.limit = limit

        def __call__(self, w):
            return keras.ops.clip(w, -self.limit, self.limit)
    ```
    """


for _base in (
    SerializableLayer,
    SerializableModel,
    SerializableLoss,
    SerializableMetric,
    SerializableLearningRateSchedule,
    SerializableInitializer,
    SerializableRegularizer,
    SerializableConstraint,
):
    _config.install(_base)
