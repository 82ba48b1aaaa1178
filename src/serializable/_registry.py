"""What is registered and what is Keras's own: every such question, answered here.

Saving needs to know whether an object can be found again by name (it is
registered, or it is Keras's own); loading and inspecting need to know
whether a name in a file is Keras's or a custom one, and which registered
class a bare name means. Those answers live in this module, over Keras's
public registry (`keras.saving.get_custom_objects`) and the few look-ups
`_keras_compat` wraps. The registration decorator (`_register`) records
here what Keras's registry cannot hold: which module registered a class
defined elsewhere, and the bare names `.h5` stores for registered models.
"""

from __future__ import annotations

from typing import Any

import keras

from . import _keras_compat

# ---------------------------------------------------------------------------
# Registered objects
# ---------------------------------------------------------------------------


def custom_objects() -> dict[str, Any]:
    """Keras's registry of custom objects (registered name -> object), live."""
    return _keras_compat.custom_objects()


def registered_object(name: str) -> Any:
    """The object registered as `name`, or None."""
    return custom_objects().get(name)


def is_registered_name(name: str) -> bool:
    """Whether `name` is a registered name."""
    return name in custom_objects()


def is_registered(obj: Any) -> bool:
    """Whether `obj` itself is registered (found again by its registered name)."""
    return _keras_compat.is_registered(obj)


def registered_name(obj: Any) -> str | None:
    """The name `obj` is registered under (`"package>Name"`), or None."""
    return _keras_compat.registered_name(obj)


def single_registered(bare: str) -> str | None:
    """The registered name of the single class registered as `*>bare`.

    The library's own classes are not candidates, so its `CTCLayer` never
    makes a user's ambiguous; two user classes of that name are ambiguous and
    resolve to nothing.
    """
    names = [
        key for key in custom_objects() if key.rsplit(">", 1)[-1] == bare and ">" in key
    ]
    # The library's own classes (`serializable>CTCLayer`) are never what a
    # Keras 2 file meant: Keras 2 could not save them.
    users = [key for key in names if not key.startswith("serializable>")]
    return users[0] if len(users) == 1 else None


# Registered name -> the module that registered a class defined elsewhere
# (README "way 3": a third-party class registered from the user's module). A
# new process must import that module, not only the class's own, to find it.
_REGISTERED_FROM: dict[str, str] = {}


def note_registering_module(registered_name: str, module: str) -> None:
    """Record that `module` registered `registered_name` (a class defined elsewhere)."""
    _REGISTERED_FROM[registered_name] = module


def registering_module(registered_name: str) -> str | None:
    """The module that registered `registered_name`, if not the class's own."""
    return _REGISTERED_FROM.get(registered_name)


# Bare class names `.h5` may store for a top-level model
# (docs/pitfalls.md#subclassed-models-in-h5), and the registered model
# classes behind each; a name shared by two classes is ambiguous and gets no
# alias.
_BARE_MODEL_NAMES: dict[str, set[str]] = {}


def alias_bare_model_name(cls: type, registered_name: str) -> None:
    """Let `.h5`, which stores a top-level model by bare class name, find the
    registered model `cls`, unless the bare name is Keras's or ambiguous."""
    bare = cls.__name__
    if is_keras_class_name(bare):
        return  # never shadow a Keras class in `.h5` lookups
    owners = _BARE_MODEL_NAMES.setdefault(bare, set())
    owners.add(registered_name)
    objects = custom_objects()
    if len(owners) == 1:
        objects[bare] = cls
    else:
        # Two registered models share the bare name: `.h5` cannot tell them
        # apart, so neither gets the alias and Keras reports the name unknown;
        # `bare_model_name_owners` lists the candidates for a better message.
        current = objects.get(bare)
        if current is not None and getattr(current, "__name__", None) == bare:
            del objects[bare]


def bare_model_name_owners(bare: str) -> set[str]:
    """Registered names of the models `.h5` would store as `bare`."""
    return set(_BARE_MODEL_NAMES.get(bare, ()))


# ---------------------------------------------------------------------------
# Keras's own
# ---------------------------------------------------------------------------


def is_keras_module(module: str) -> bool:
    """Whether `module` is Keras's (`keras` or below it)."""
    return module == "keras" or module.startswith("keras.")


def is_keras_own(cls_or_fn: Any) -> bool:
    """Whether a class or function is defined by Keras."""
    return is_keras_module(getattr(cls_or_fn, "__module__", None) or "")


def is_keras_family(cls: type) -> bool:
    """Initializers, regularizers and constraints are not KerasSaveable."""
    return issubclass(
        cls,
        (
            keras.initializers.Initializer,
            keras.regularizers.Regularizer,
            keras.constraints.Constraint,
        ),
    )


def is_keras_object(value: object) -> bool:
    """Whether `value` is an object Keras serializes itself: a saveable (layer,
    model, loss, metric, optimizer...), a dtype policy, a learning-rate
    schedule, an initializer, regularizer or constraint (custom ones too)."""
    return isinstance(
        value,
        (
            *_keras_compat.saveable_types(),
            keras.DTypePolicy,
            keras.optimizers.schedules.LearningRateSchedule,
        ),
    ) or is_keras_family(type(value))


def is_keras_class_name(name: str) -> bool:
    """Whether Keras's loader resolves the class name `name` by itself: one of
    its layers or models (see `_keras_compat.keras_builtin_names`)."""
    return name in _keras_compat.keras_builtin_names()


def is_keras_class(name: str) -> bool:
    """Whether `name` names a Keras model, layer, loss, metric or optimizer
    class (the names a Keras 2 config may use without a package)."""
    from keras import layers, losses, metrics, optimizers

    if name in ("Functional", "Sequential", "Model", "InputLayer"):
        return True
    return any(
        isinstance(getattr(module, name, None), type)
        for module in (layers, losses, metrics, optimizers)
    )


def keras_function(name: str) -> Any:
    """The Keras function Keras's loader finds for a function saved by bare
    name with module "builtins" (`relu`, `mean_squared_error`), or None."""
    return _keras_compat.keras_builtin_function(name)
