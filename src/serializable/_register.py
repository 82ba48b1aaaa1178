"""`register_keras_serializable`: Keras's decorator, plus a generated config.

Same signature and registered-name scheme (`"package>Name"`) as
`keras.saving.register_keras_serializable`, so switching is an import change.
On top of Keras it:

* generates `get_config`/`from_config` from `__init__` (see `_config`);
* refuses to register a *different* class under a name already taken (Keras
  silently lets the later one win: docs/pitfalls.md#name-clashes);
  registering the same class again, as a module reload does, is fine;
* lets legacy `.h5` files find registered `Model` subclasses, which `.h5`
  records by bare class name only (docs/pitfalls.md#subclassed-models-in-h5).
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import keras

from . import _config, _keras_compat, _registry
from ._errors import RegistrationError

T = TypeVar("T")


def register_keras_serializable(
    package: str = "Custom", name: str | None = None
) -> Callable[[T], T]:
    """Register a class or function with Keras and generate its config.

    Use it exactly like `keras.saving.register_keras_serializable`: as a
    decorator on classes and functions you write, or as a call on a class you
    cannot edit. Classes that do not write `get_config` get one generated from
    their `__init__` signature, and a matching `from_config`, so they save and
    reload in both `.keras` and `.h5` with no `custom_objects`.

    Args:
        package: The package the object belongs to; the registered name is
            `"package>name"`.
        name: The name to register under. Defaults to the class or function
            name.

    Returns:
        A decorator that registers its argument and returns it unchanged
        (classes gain the generated methods).

    Raises:
        RegistrationError: If `package` contains `>`, the registered name is
            already taken by a different class or function, or the object is
            neither a function, a Keras class nor an Enum.

    Example:

    ```python
    import keras
    import serializable

    @serializable.register_keras_serializable(package="my_project")
    class Scale(keras.layers.Layer):
        def __init__(self, factor=2.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x):
            return x * self.factor

    # A third-party class you cannot edit:
    serializable.register_keras_serializable(package="ext")(TheirLayer)
    ```
    """
    if not isinstance(package, str) or ">" in package:
        message = (
            "register_keras_serializable argument 'package' must be a str without "
            f"'>'. Received: package={package!r}. Pass a plain package name such "
            "as 'my_project'."
        )
        raise RegistrationError(message)

    def decorator(obj: T) -> T:
        registered_name = f"{package}>{name or getattr(obj, '__name__', '')}"
        _note_registering_module(
            registered_name, obj, getattr(inspect.currentframe(), "f_back", None)
        )
        if inspect.isclass(obj):
            _check_class(obj, registered_name)
        elif not callable(obj) or not hasattr(obj, "__name__"):
            message = (
                "register_keras_serializable can register a class or a function. "
                f"Received: {obj!r} (type {type(obj).__name__}). Decorate the class "
                "or function definition itself."
            )
            raise RegistrationError(message)
        _check_name_free(obj, registered_name)
        if inspect.isclass(obj) and _config.kind_of(obj) is not None:
            _config.install(obj)
        if inspect.isclass(obj) and issubclass(obj, enum.Enum):
            # Keras's decorator insists on get_config; an Enum member is saved
            # by name, so the class only needs to be findable.
            _keras_compat.register_name(obj, registered_name)
            return obj
        keras.saving.register_keras_serializable(package=package, name=name)(obj)
        if inspect.isclass(obj) and issubclass(obj, keras.Model):
            _registry.alias_bare_model_name(obj, registered_name)
        return obj

    return decorator


def _note_registering_module(registered_name: str, obj: Any, frame: Any) -> None:
    # The first caller outside this package (base classes register from here).
    while frame is not None and str(frame.f_globals.get("__name__", "")).startswith(
        "serializable."
    ):
        frame = frame.f_back
    module = frame.f_globals.get("__name__") if frame is not None else None
    if isinstance(module, str) and module != getattr(obj, "__module__", None):
        _registry.note_registering_module(registered_name, module)


def _check_class(cls: type, registered_name: str) -> None:
    if _config.kind_of(cls) is not None:
        return
    if issubclass(cls, enum.Enum):
        return
    if hasattr(cls, "get_config"):
        return  # a Keras-saveable object of some other kind: register as Keras does
    message = (
        f"register_keras_serializable cannot generate a config for {cls.__name__}: "
        "expected a subclass of a Keras layer, model, loss, metric, initializer, "
        "regularizer, constraint, optimizer or learning rate schedule, or an Enum. "
        f"Received: class {cls.__module__}.{cls.__qualname__} (registered as "
        f"{registered_name!r}). Subclass the matching Keras base class, or give the "
        "class get_config/from_config methods."
    )
    raise RegistrationError(message)


def _same_object(a: Any, b: Any) -> bool:
    if a is b:
        return True
    # A module reload re-creates the class: same module and qualified name.
    return (
        getattr(a, "__module__", None) == getattr(b, "__module__", None)
        and getattr(a, "__qualname__", None) == getattr(b, "__qualname__", None)
        and "<locals>" not in (getattr(a, "__qualname__", "") or "")
    )


def _check_name_free(obj: Any, registered_name: str) -> None:
    existing = _registry.registered_object(registered_name)
    if existing is None or _same_object(existing, obj):
        return
    message = (
        f"Cannot register {_describe(obj)} as {registered_name!r}: expected a "
        f"free registered name. Received: {registered_name!r}, already taken by "
        f"{_describe(existing)}. Pass a different `package` or `name` to "
        "register_keras_serializable, or rename one of them."
    )
    raise RegistrationError(message)


def _describe(obj: Any) -> str:
    kind = "class" if inspect.isclass(obj) else "function"
    return (
        f"{kind} {getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', obj)}"
    )
