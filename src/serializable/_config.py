"""Argument capture and the generated `get_config` / `from_config`.

`install(cls)` gives a class three things:

* a `__new__` that binds the constructor arguments to `cls.__init__`'s
  signature and keeps a private, checked copy of them *before* `__init__` runs
  (so an `__init__` that mutates its arguments cannot change what is saved);
* a `get_config` that encodes those arguments with the value codec, plus the
  few settings Keras keeps outside `__init__` (name, trainable, dtype policy);
* a `from_config` that decodes them, calls the constructor the way it was
  called (positional-only and `*args` included), and puts back the settings
  that an `__init__` without `**kwargs` could not take.

A class that writes its own `get_config` keeps it; it only gets a
`from_config` that deserializes the nested Keras objects it returns (see
docs/pitfalls.md#get-config-returns-objects).
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable
from typing import Any

import keras

from . import _codec, _keras_compat, _registry
from ._codec import TAG, Where
from ._errors import (
    ConfigVersionError,
    UnknownConfigKeyError,
    UnserializableArgumentError,
)

CAPTURE_ATTR = "_serializable_init_args"
_GENERATED = "_serializable_generated"


# ---------------------------------------------------------------------------
# What kind of Keras object a class is, and the settings Keras keeps for it
# ---------------------------------------------------------------------------


class Kind:
    """The Keras base family of a class and how to save/restore its base settings."""

    def __init__(
        self,
        name: str,
        base: type,
        keys: tuple[str, ...],
        settings: Callable[[Any], dict[str, Any]],
        restore: Callable[[Any, str, Any], None],
    ) -> None:
        self.name = name
        self.base = base
        self.keys = frozenset(keys)
        self.settings = settings
        self.restore = restore


def _layer_settings(obj: Any) -> dict[str, Any]:
    return {
        "name": obj.name,
        "trainable": obj.trainable,
        "dtype": keras.dtype_policies.serialize(obj.dtype_policy),
    }


def _layer_restore(obj: Any, key: str, value: Any) -> None:
    if key == "name":
        if obj.name != value:
            obj.name = value
    elif key == "trainable":
        if obj.trainable != value:
            obj.trainable = value
    elif key == "dtype":
        policy = keras.dtype_policies.get(value)
        if obj.dtype_policy.name != policy.name:
            obj.dtype_policy = policy


def _loss_settings(obj: Any) -> dict[str, Any]:
    return {"name": obj.name, "reduction": obj.reduction, "dtype": obj.dtype}


def _metric_settings(obj: Any) -> dict[str, Any]:
    return {"name": obj.name, "dtype": obj.dtype}


def _attr_restore(obj: Any, key: str, value: Any) -> None:
    if key == "dtype":
        if getattr(obj, "dtype", value) != value:
            _keras_compat.set_compute_dtype(obj, keras.dtype_policies.get(value))
        return
    if getattr(obj, key, None) != value:
        setattr(obj, key, value)


def _no_settings(obj: Any) -> dict[str, Any]:
    return {}


@functools.cache
def _kinds() -> tuple[Kind, ...]:
    # Order matters: Model before Layer.
    layer = ("name", "trainable", "dtype")
    none: tuple[str, ...] = ()
    return (
        Kind("model", keras.Model, layer, _layer_settings, _layer_restore),
        Kind("layer", keras.layers.Layer, layer, _layer_settings, _layer_restore),
        Kind(
            "loss",
            keras.losses.Loss,
            ("name", "reduction", "dtype"),
            _loss_settings,
            _attr_restore,
        ),
        Kind(
            "metric",
            keras.metrics.Metric,
            ("name", "dtype"),
            _metric_settings,
            _attr_restore,
        ),
        Kind(
            "learning rate schedule",
            keras.optimizers.schedules.LearningRateSchedule,
            none,
            _no_settings,
            _attr_restore,
        ),
        Kind(
            "initializer",
            keras.initializers.Initializer,
            none,
            _no_settings,
            _attr_restore,
        ),
        Kind(
            "regularizer",
            keras.regularizers.Regularizer,
            none,
            _no_settings,
            _attr_restore,
        ),
        Kind(
            "constraint",
            keras.constraints.Constraint,
            none,
            _no_settings,
            _attr_restore,
        ),
        Kind(
            "optimizer", keras.optimizers.Optimizer, none, _no_settings, _attr_restore
        ),
    )


def kind_of(cls: type) -> Kind | None:
    """The Keras family `cls` belongs to, or None if it is no Keras object."""
    for kind in _kinds():
        if issubclass(cls, kind.base):
            return kind
    return None


# ---------------------------------------------------------------------------
# Per-class signature facts, computed once per class
# ---------------------------------------------------------------------------


class Spec:
    """What the generated config needs to know about one class's `__init__`."""

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.kind = kind_of(cls)
        self.signature = inspect.signature(cls.__init__)  # type: ignore[misc]
        params = list(self.signature.parameters.values())[1:]  # drop self
        self.params = {p.name: p for p in params}
        self.positional_only = [p.name for p in params if p.kind is p.POSITIONAL_ONLY]
        self.positional = [
            p.name
            for p in params
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        self.varargs = next(
            (p.name for p in params if p.kind is p.VAR_POSITIONAL), None
        )
        self.varkw = next((p.name for p in params if p.kind is p.VAR_KEYWORD), None)
        self.named = {
            p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        }
        # (name, default) of every named parameter, in signature order.
        self.defaults = [
            (p.name, p.default)
            for p in params
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        # Parameters a `**kwargs` is known to end up in: every __init__ up the
        # class hierarchy, Keras's own included.
        self.known = set(self.named)
        for klass in cls.__mro__[1:]:
            init = klass.__dict__.get("__init__")
            if init is None or klass is object:
                continue
            try:
                self.known.update(inspect.signature(init).parameters)
            except (TypeError, ValueError):
                continue
        self.known -= {"self", "args", "kwargs"}
        self.version = getattr(cls, "config_version", None)

    def capture(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Bind and copy the constructor arguments, or None if they do not bind."""
        arguments = self._bind(args, kwargs)
        if arguments is None:
            return None  # let __init__ raise its own, clearer error
        owner = self.cls.__name__
        captured: dict[str, Any] = {}
        for name, value in arguments.items():
            if name == self.varkw:
                for key, item in value.items():
                    captured[key] = _codec.snapshot(item, Where(owner, key))
            elif name == self.varargs:
                captured[name] = [
                    _codec.snapshot(item, Where(owner, name)[i])
                    for i, item in enumerate(value)
                ]
            else:
                captured[name] = _codec.snapshot(value, Where(owner, name))
        return captured

    def _bind(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> dict[str, Any] | None:
        """`Signature.bind` + `apply_defaults`, without `self`, or None on mismatch.

        The common signature (no positional-only, no `*args`) is bound by hand:
        this runs for every object created, and `inspect` is the slow part.
        """
        if self.positional_only or self.varargs is not None:
            try:
                bound = self.signature.bind(None, *args, **kwargs)
            except TypeError:
                return None
            bound.apply_defaults()
            bound_arguments = dict(bound.arguments)
            bound_arguments.pop(next(iter(bound_arguments)))  # self
            return bound_arguments
        if len(args) > len(self.positional):
            return None
        given = dict(zip(self.positional, args, strict=False))
        extra: dict[str, Any] = {}
        for key, value in kwargs.items():
            if key in given:
                return None  # multiple values for one argument
            if key in self.named:
                given[key] = value
            elif self.varkw is not None:
                extra[key] = value
            else:
                return None
        arguments: dict[str, Any] = {}
        for name, default in self.defaults:
            if name in given:
                arguments[name] = given[name]
            elif default is inspect.Parameter.empty:
                return None  # a required argument is missing
            else:
                arguments[name] = default
        if self.varkw is not None:
            arguments[self.varkw] = extra
        return arguments


_SPECS: dict[type, Spec] = {}


def spec_for(cls: type) -> Spec:
    spec = _SPECS.get(cls)
    if spec is None:
        spec = _SPECS[cls] = Spec(cls)
    return spec


# ---------------------------------------------------------------------------
# Capture through __new__
# ---------------------------------------------------------------------------


def _capturing_new(cls: type, *args: Any, **kwargs: Any) -> Any:
    # Skip every class that carries this same __new__, then call the next one.
    parent_new: Any = object.__new__
    for klass in cls.__mro__:
        new = klass.__dict__.get("__new__")
        if new is None or new is _CAPTURING_NEW:
            continue
        parent_new = new.__func__ if isinstance(new, staticmethod) else new
        break
    if parent_new is object.__new__:
        instance = object.__new__(cls)
    else:
        instance = parent_new(cls, *args, **kwargs)
    if getattr(cls, _GENERATED, False):
        instance.__dict__[CAPTURE_ATTR] = spec_for(cls).capture(args, kwargs)
    _guard_built_children(args, kwargs)
    return instance


def _guard_built_children(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """A built layer handed to a constructor must not be built again.

    See docs/pitfalls.md#child-built-twice.

    This covers hand-written `from_config`s too: whatever deserialized the
    child, the parent's `build()` calling `child.build()` becomes a no-op.
    """
    for value in (*args, *kwargs.values()):
        if isinstance(value, (list, tuple)):
            items: Any = value
        elif isinstance(value, dict):
            items = value.values()
        else:
            items = (value,)
        for item in items:
            if isinstance(item, keras.layers.Layer) and item.built:
                _codec.guard_rebuild(item)


_CAPTURING_NEW = staticmethod(_capturing_new)


# ---------------------------------------------------------------------------
# The generated methods
# ---------------------------------------------------------------------------


def generated_get_config(self: Any) -> dict[str, Any]:
    """Return the constructor arguments this object was created with, encoded.

    Generated by keras-serializable from the `__init__` signature; see
    docs/config.md. Values are encoded so that they reload as the same type
    from both `.keras` and `.h5` files.
    """
    cls = type(self)
    spec = spec_for(cls)
    captured = self.__dict__.get(CAPTURE_ATTR)
    if captured is None:
        message = (
            f"Cannot generate the config of {cls.__name__} object "
            f"'{getattr(self, 'name', self)}': expected it to be created by "
            f"calling {cls.__name__}(...), which records the constructor "
            "arguments. Received: an object whose arguments were not recorded "
            "(created before the class was registered, or with __new__, or "
            f"with arguments that do not match {cls.__name__}.__init__). Create "
            "it by calling the class."
        )
        raise UnserializableArgumentError(message)
    owner = cls.__name__
    config = {
        name: _codec.encode(value, Where(owner, name))
        for name, value in captured.items()
    }
    if spec.kind is not None:
        config.update(spec.kind.settings(self))
    meta: dict[str, Any] = {}
    if spec.version is not None:
        meta["version"] = spec.version
    if spec.varkw is not None:
        extra = sorted(k for k in captured if k not in spec.known and k != spec.varargs)
        if extra:
            meta["kwargs"] = extra
    if isinstance(self, keras.Model) and self.built and not _is_functional(self):
        # `.h5` keeps no build information for subclassed models
        # (docs/pitfalls.md#subclassed-models-in-h5); keep it
        # in the config so from_config can rebuild before weights load.
        build_config = self.get_build_config()
        if build_config:
            meta["build"] = _codec._plain(build_config)
    if meta:
        config[TAG] = meta
    return config


def _is_functional(model: Any) -> bool:
    """Functional models rebuild their graph in __init__ and need no build info."""
    return _keras_compat.is_functional(model)


def generated_from_config(
    cls: type, config: dict[str, Any], custom_objects: dict[str, Any] | None = None
) -> Any:
    """Create an object from a config written by the generated `get_config`.

    Generated by keras-serializable. Decodes every value, upgrades configs
    saved with an older `config_version`, and rejects unknown keys.
    """
    spec = spec_for(cls)
    config = dict(config)
    meta = config.pop(TAG, None) or {}
    config = _upgrade(cls, spec, config, meta.get("version", 1))
    _restore_hijacked_strings(config)
    settings = _pop_settings(spec, config)
    _check_keys(cls, spec, config, set(meta.get("kwargs", ())))
    values = {key: _codec.decode(value) for key, value in config.items()}
    instance = _construct(cls, spec, values, settings)
    build_config = meta.get("build")
    if build_config and not instance.built:
        instance.build_from_config(build_config)
        # Model.build_from_config builds a subclassed model by running `call`
        # symbolically, which builds every sublayer but leaves the model's own
        # flag unset; `.h5` weight loading and `summary()` need it set.
        if all(layer.built for layer in _keras_compat.flatten_layers(instance)):
            instance.built = True
    return instance


def _setting_for_init(key: str, value: Any) -> Any:
    if key == "dtype" and isinstance(value, dict):
        policy = keras.dtype_policies.deserialize(value)
        if isinstance(policy, keras.DTypePolicy) and policy.quantization_mode is None:
            return policy.name
        return policy
    return value


def _upgrade(
    cls: type, spec: Spec, config: dict[str, Any], version: int
) -> dict[str, Any]:
    target = spec.version if spec.version is not None else 1
    if version == target:
        return config
    if version > target:
        message = (
            f"{cls.__name__} config has config_version {version}, newer than this "
            f"code understands: expected at most {target}. Received: "
            f"config_version={version}. Upgrade the package that defines "
            f"{cls.__name__}."
        )
        raise ConfigVersionError(message)
    upgrade = getattr(cls, "upgrade_config", None)
    if upgrade is None:
        message = (
            f"{cls.__name__} config was saved with config_version {version}, but "
            f"the class is at version {target} and defines no upgrade hook. "
            f"Received: config_version={version}. Add a classmethod "
            "`upgrade_config(cls, config, from_version)` that returns the config "
            "in the current form."
        )
        raise ConfigVersionError(message)
    upgraded = upgrade(dict(config), version)
    if not isinstance(upgraded, dict):
        message = (
            f"{cls.__name__}.upgrade_config must return the upgraded config dict. "
            f"Received: {type(upgraded).__name__}. Return the modified config."
        )
        raise ConfigVersionError(message)
    upgraded.pop(TAG, None)
    return upgraded


def _restore_hijacked_strings(config: dict[str, Any]) -> None:
    """Undo the legacy `.h5` loader turning str values into same-named functions.

    Our encoding never stores a bare function, so a function here was a string
    that happened to match a registered or Keras function name.
    """
    for key, value in config.items():
        if inspect.isfunction(value):
            config[key] = keras.saving.get_registered_name(value)


def _check_keys(cls: type, spec: Spec, config: dict[str, Any], extra: set[str]) -> None:
    allowed = spec.named | extra
    if spec.varkw is not None:
        allowed = allowed | spec.known
    if spec.varargs is not None:
        allowed = allowed | {spec.varargs}
    for key in config:
        if key in allowed:
            continue
        choices = sorted(spec.named - set(config)) or sorted(spec.named)
        close = difflib.get_close_matches(key, choices, n=1, cutoff=0.5)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        accepted = sorted(spec.named | (spec.kind.keys if spec.kind else set()))
        message = (
            f"{cls.__name__}.from_config got an unknown config key '{key}': "
            f"expected one of {accepted}. Received: "
            f"{key}={_codec._short_repr(config[key])}.{hint} If the argument was "
            f"renamed or removed, set `config_version` on {cls.__name__} and "
            "translate old configs in `upgrade_config(cls, config, from_version)`."
        )
        raise UnknownConfigKeyError(message)


def _call(cls: type, spec: Spec, values: dict[str, Any]) -> Any:
    if spec.varargs is None and not spec.positional_only:
        return cls(**values)
    args: list[Any] = []
    for name in spec.positional:
        if name not in values:
            break
        if spec.varargs is None and name not in spec.positional_only:
            break
        args.append(values.pop(name))
    if spec.varargs is not None:
        args.extend(values.pop(spec.varargs, ()))
    return cls(*args, **values)


def lenient_from_config(
    cls: type, config: dict[str, Any], custom_objects: dict[str, Any] | None = None
) -> Any:
    """Create an object from a hand-written config, deserializing nested objects.

    Installed by keras-serializable on classes that write their own
    `get_config` but not `from_config`. Keras's default `cls(**config)` passes
    nested layers and initializers to `__init__` as dicts (see
    docs/pitfalls.md#get-config-returns-objects).
    """
    spec = spec_for(cls)
    config = dict(config)
    _restore_hijacked_strings(config)
    settings = _pop_settings(spec, config)
    values = {}
    for key, value in config.items():
        if _looks_serialized(value):
            value = keras.saving.deserialize_keras_object(value)
            if isinstance(value, keras.layers.Layer):
                _codec.guard_rebuild(value)
        else:
            value = _codec.decode(value)
        values[key] = value
    return _construct(cls, spec, values, settings)


def _pop_settings(spec: Spec, config: dict[str, Any]) -> dict[str, Any]:
    keys = spec.kind.keys if spec.kind is not None else frozenset()
    return {key: config.pop(key) for key in list(config) if key in keys}


def _construct(
    cls: type, spec: Spec, values: dict[str, Any], settings: dict[str, Any]
) -> Any:
    """Call the constructor, then put back settings `__init__` could not take.

    See docs/pitfalls.md#missing-kwargs.

    name, trainable and dtype go to `__init__` when it accepts them; an
    `__init__` without `**kwargs`, or one that swallows them, would lose them,
    so they are set on the instance afterwards whenever they differ.
    """
    for key, value in settings.items():
        if key in spec.named or spec.varkw is not None:
            values[key] = _setting_for_init(key, value)
    instance = _call(cls, spec, values)
    if spec.kind is not None:
        for key, value in settings.items():
            spec.kind.restore(instance, key, value)
    return instance


def _looks_serialized(value: Any) -> bool:
    return isinstance(value, dict) and "class_name" in value and "config" in value


# ---------------------------------------------------------------------------
# Installing on a class
# ---------------------------------------------------------------------------


def defines_own(cls: type, method: str) -> bool:
    """True if `cls` or a parent below its Keras base writes `method` itself."""
    for klass in cls.__mro__:
        if _registry.is_keras_own(klass) or klass is object:
            return False
        attr = klass.__dict__.get(method)
        if attr is None:
            continue
        func = getattr(attr, "__func__", attr)
        return not getattr(func, _GENERATED, False)
    return False


def _complete_settings(cls: type) -> None:
    """Add name/trainable/dtype to a hand-written get_config that forgot super()."""
    user_get_config = cls.get_config  # type: ignore[attr-defined]
    if getattr(user_get_config, "_serializable_completes", False):
        return

    @functools.wraps(user_get_config)
    def get_config(self: Any) -> dict[str, Any]:
        config = user_get_config(self)
        if not isinstance(config, dict):
            return config
        # Nested objects, arrays and tuples returned as they are would reach
        # `.h5` as strings or lists (docs/pitfalls.md: get-config-returns-objects,
        # tuples, numpy-values): encode them like generated configs do;
        # from_config decodes them.
        # Plain JSON values (tuples included) are left exactly as written, so
        # the file still loads where the class is registered with plain Keras.
        owner = type(self).__name__
        for key, value in list(config.items()):
            if not _looks_serialized(value) and not _plain_json(value):
                config[key] = _codec.encode(value, Where(owner, key))
        kind = kind_of(type(self))
        if kind is not None:
            for key, value in kind.settings(self).items():
                config.setdefault(key, value)
        return config

    get_config._serializable_completes = True  # type: ignore[attr-defined]
    cls.get_config = get_config  # type: ignore[attr-defined]


def _plain_json(value: Any) -> bool:
    """Whether Keras writes `value` as JSON by itself (a tuple as a list)."""
    if value is None or type(value) in (str, int, float, bool):
        return True
    if type(value) in (list, tuple):
        return all(_plain_json(item) for item in value)
    if type(value) is dict:
        return all(
            isinstance(key, str) and _plain_json(item) for key, item in value.items()
        )
    return False


def build_from_config_by_run(self: Any, config: dict[str, Any]) -> None:
    """Rebuild a layer that has no `build()` by tracing `call` on its input shapes.

    Keras's default rebuilds such a layer by calling its empty `build`, which
    warns and leaves layers created in `__init__` unbuilt until first use;
    `Model.build_from_config` already traces instead, and so do we.
    """
    if config and _keras_compat.build_by_running(self, config):
        return
    keras.layers.Layer.build_from_config(self, config)


def install(cls: type) -> None:
    """Give `cls` a generated config unless it writes its own (see module doc)."""
    if cls.__dict__.get("__new__") is not _CAPTURING_NEW:
        cls.__new__ = _CAPTURING_NEW  # type: ignore[assignment]
    if (
        issubclass(cls, keras.layers.Layer)
        and not issubclass(cls, keras.Model)
        and not defines_own(cls, "build_from_config")
    ):
        cls.build_from_config = build_from_config_by_run  # type: ignore[attr-defined]
    if defines_own(cls, "get_config"):
        if not defines_own(cls, "from_config") and not issubclass(cls, keras.Model):
            cls.from_config = classmethod(lenient_from_config)  # type: ignore[attr-defined]
            _complete_settings(cls)
        return
    spec_for(cls)  # fail fast on a signature inspect cannot read
    setattr(cls, _GENERATED, True)
    cls.get_config = generated_get_config  # type: ignore[attr-defined]
    if not defines_own(cls, "from_config"):
        cls.from_config = classmethod(generated_from_config)  # type: ignore[attr-defined]


for _func in (
    generated_get_config,
    generated_from_config,
    lenient_from_config,
    build_from_config_by_run,
):
    setattr(_func, _GENERATED, True)
