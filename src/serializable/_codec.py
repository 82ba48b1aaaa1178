"""The value codec: constructor arguments <-> plain JSON, the same in both formats.

Every value a generated config holds is encoded here into JSON made only of
dicts with str keys, lists, str, int, float, bool and None. Both the `.keras`
writer and the legacy `.h5` writer pass such JSON through untouched, so one
encoding serves both formats and every value comes back as the same type.

Values JSON cannot tell apart are wrapped in a tagged dict, a dict whose only
marker key is `"__serializable__"` naming the kind of value, e.g.
`{"__serializable__": "tuple", "items": [1, 2]}`. Keras objects are stored
with Keras's own `serialize_keras_object`, so they reload through Keras's
safe-mode deserializer: nothing in a file can name code to run.

See docs/design.md for why capture and encoding are split the way they are.
"""

from __future__ import annotations

import base64
import enum
import inspect
import types
import warnings
from typing import Any

import keras
import numpy as np

from . import _registry
from ._errors import ConfigDecodeError, UnserializableArgumentError

TAG = "__serializable__"

# Arrays up to this many elements are written as readable nested lists; larger
# ones as base64 of their little-endian bytes, which is smaller and exact.
_MAX_LIST_ELEMENTS = 256
_LIST_DTYPE_KINDS = frozenset("biufU")
_ARRAY_DTYPE_KINDS = frozenset("biufcUS")
_PLAIN = (str, int, float, bool, type(None))

SUPPORTED = (
    "None, bool, int, float, str; list, tuple and dict of supported values; "
    "numpy arrays and scalars; Enum members; registered functions; and Keras "
    "objects (layers, initializers, regularizers, constraints, activations, "
    "losses, metrics, optimizers, dtype policies, registered classes)"
)


class Where:
    """Where a value sits, for error messages: `MyLayer.__init__` argument path."""

    __slots__ = ("owner", "arg", "path")

    def __init__(self, owner: str, arg: str, path: str = "") -> None:
        self.owner = owner
        self.arg = arg
        self.path = path

    def __getitem__(self, key: object) -> Where:
        return Where(self.owner, self.arg, f"{self.path}[{key!r}]")

    def __str__(self) -> str:
        return f"{self.arg}{self.path}"


# ---------------------------------------------------------------------------
# Checks shared by capture and encoding
# ---------------------------------------------------------------------------


def _fail(where: Where, value: object, expected: str, fix: str) -> None:
    shown = _short_repr(value)
    message = (
        f"{where.owner}.__init__ argument '{where}' cannot be saved: expected "
        f"{expected}. Received: {where}={shown} (type "
        f"{type(value).__module__}.{type(value).__qualname__}). {fix}"
    )
    raise UnserializableArgumentError(message)


def _short_repr(value: object) -> str:
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not hide the real error
        text = object.__repr__(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_function(fn: Any, where: Where) -> None:
    name = getattr(fn, "__name__", "")
    if name == "<lambda>":
        _fail(
            where,
            fn,
            "a registered function or a Keras object",
            "Replace the lambda with a named function decorated with "
            "@serializable.register_keras_serializable(); a lambda cannot be "
            "reloaded without executing code from the file.",
        )
    if not _function_round_trips(fn):
        _fail(
            where,
            fn,
            "a registered function or a Keras built-in",
            f"Decorate '{getattr(fn, '__qualname__', name)}' with "
            "@serializable.register_keras_serializable() at module level, so "
            "loading can find it by name.",
        )


def _function_round_trips(fn: Any) -> bool:
    if _registry.is_registered(fn):
        return True
    if not isinstance(fn, types.FunctionType) or not _registry.is_keras_own(fn):
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            config = keras.saving.serialize_keras_object(fn)
            return keras.saving.deserialize_keras_object(config) is fn
    except Exception:
        return False


def _check_keras_object(value: object, where: Where) -> None:
    cls = type(value)
    if not (_registry.is_registered(cls) or _registry.is_keras_own(cls)):
        _fail(
            where,
            value,
            "a Keras built-in or a registered class",
            f"Decorate class {cls.__qualname__} with "
            "@serializable.register_keras_serializable() (or subclass a "
            "serializable base class) so loading can find it by name.",
        )


def _enum_name(cls: type) -> str:
    registered = _registry.registered_name(cls)
    return registered or f"{cls.__module__}:{cls.__qualname__}"


def _check_enum(value: enum.Enum, where: Where) -> None:
    """Only registered Enums: loading finds an Enum class by its registered
    name alone, never through a module a file names."""
    cls = type(value)
    if _registry.is_registered(cls):
        return
    if "<locals>" in cls.__qualname__:
        _fail(
            where,
            value,
            "a member of a registered, module-level Enum",
            f"Move {cls.__name__} to module level in an importable module, "
            "and register it with @serializable.register_keras_serializable().",
        )
    _fail(
        where,
        value,
        "a member of a registered Enum",
        f"Decorate class {cls.__qualname__} with "
        "@serializable.register_keras_serializable(): loading finds Enum classes "
        "by registered name only, never through a module a file names.",
    )


def _check_array(value: np.ndarray | np.generic, where: Where) -> None:
    if value.dtype.kind not in _ARRAY_DTYPE_KINDS:
        _fail(
            where,
            value,
            "a numpy array or scalar of a bool, int, float, complex or string dtype",
            f"dtype {value.dtype} has no portable representation; convert it "
            "to a numeric or string dtype.",
        )


def _unsupported(value: object, where: Where) -> None:
    if callable(value) and not isinstance(value, type):
        fix = (
            "Pass a named module-level function decorated with "
            "@serializable.register_keras_serializable(); closures, bound "
            "methods and partials cannot be found by name at load time."
        )
    elif isinstance(value, type):
        fix = (
            "Pass an instance or a name instead of the class itself, or build "
            "the object inside __init__ from serializable arguments."
        )
    else:
        fix = (
            "Convert it to one of the supported types, keep large numeric "
            "state with serializable.add_state_weight(), or write get_config "
            "and from_config for this class yourself."
        )
    _fail(where, value, SUPPORTED, fix)


# ---------------------------------------------------------------------------
# Capture: a private copy of the arguments, checked as early as possible
# ---------------------------------------------------------------------------


def snapshot(value: Any, where: Where) -> Any:
    """Copy `value` so later mutation cannot change it, and check it can be saved.

    Containers and numpy arrays are copied; Keras objects, functions and Enum
    members are kept by reference because they are encoded when the config is
    asked for (a nested layer's build state and weights are its own).
    """
    cls = type(value)
    if cls in _PLAIN:
        return value
    if isinstance(value, enum.Enum):
        _check_enum(value, where)
        return value
    if isinstance(value, (list, tuple)) and not _is_namedtuple(value):
        items = [snapshot(item, where[i]) for i, item in enumerate(value)]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, dict):
        return {
            snapshot(key, where[key]): snapshot(item, where[key])
            for key, item in value.items()
        }
    if isinstance(value, np.ndarray):
        _check_array(value, where)
        return value.copy()
    if isinstance(value, np.generic):
        _check_array(value, where)
        return value
    if isinstance(value, (int, float, str)):  # subclasses, e.g. np.float64
        return value
    if isinstance(value, types.FunctionType) or _registry.is_registered(value):
        _check_function(value, where)
        return value
    if _registry.is_keras_object(value):
        _check_keras_object(value, where)
        return value
    _unsupported(value, where)


def _is_namedtuple(value: object) -> bool:
    return isinstance(value, tuple) and hasattr(value, "_fields")


# ---------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------


def encode(value: Any, where: Where) -> Any:
    """Encode a captured value into plain JSON (see the module docstring)."""
    cls = type(value)
    if cls in _PLAIN:
        return value
    if cls is list or (isinstance(value, list)):
        return [encode(item, where[i]) for i, item in enumerate(value)]
    if isinstance(value, enum.Enum):
        _check_enum(value, where)
        if isinstance(value, enum.Flag):
            # A combination of flags has no single member name; its value does.
            return {TAG: "enum", "enum": _enum_name(cls), "value": value.value}
        return {TAG: "enum", "enum": _enum_name(cls), "member": value.name}
    if isinstance(value, tuple) and not _is_namedtuple(value):
        return {
            TAG: "tuple",
            "items": [encode(v, where[i]) for i, v in enumerate(value)],
        }
    if isinstance(value, dict):
        if TAG not in value and all(type(key) is str for key in value):
            return {key: encode(item, where[key]) for key, item in value.items()}
        return {
            TAG: "dict",
            "items": [
                [encode(key, where[key]), encode(item, where[key])]
                for key, item in value.items()
            ],
        }
    if isinstance(value, np.ndarray):
        _check_array(value, where)
        return _encode_array(value)
    if isinstance(value, np.generic):
        _check_array(value, where)
        return {TAG: "numpy_scalar", **_encode_array(np.asarray(value), tag=False)}
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, types.FunctionType) or (
        callable(value)
        and _registry.is_registered(value)
        and not _registry.is_keras_object(value)
    ):
        _check_function(value, where)
        return {
            TAG: "keras",
            "config": _plain(keras.saving.serialize_keras_object(value)),
        }
    if _registry.is_keras_object(value):
        _check_keras_object(value, where)
        return {
            TAG: "keras",
            "config": _plain(keras.saving.serialize_keras_object(value)),
        }
    _unsupported(value, where)


def _plain(config: Any) -> Any:
    """Keras configs may hold tuples; JSON (and so a reloaded config) cannot."""
    if isinstance(config, dict):
        return {key: _plain(value) for key, value in config.items()}
    if isinstance(config, (list, tuple)):
        return [_plain(value) for value in config]
    return config


def _encode_array(array: np.ndarray, tag: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {TAG: "ndarray"} if tag else {}
    out["dtype"] = array.dtype.str if array.dtype.kind in "US" else array.dtype.name
    out["shape"] = list(array.shape)
    if array.dtype.kind in _LIST_DTYPE_KINDS and array.size <= _MAX_LIST_ELEMENTS:
        out["data"] = array.tolist()
    else:
        little = array.astype(array.dtype.newbyteorder("<"), copy=False)
        out["base64"] = base64.b64encode(np.ascontiguousarray(little).tobytes()).decode(
            "ascii"
        )
    return out


# ---------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------


def decode(value: Any) -> Any:
    """Rebuild the value that `encode` wrote."""
    cls = type(value)
    if cls in _PLAIN:
        return value
    if cls is list:
        return [decode(item) for item in value]
    if cls is tuple:  # Keras may hand JSON lists back as tuples; keep them lists
        return [decode(item) for item in value]
    if isinstance(value, dict):
        kind = value.get(TAG)
        if kind is None:
            return {key: decode(item) for key, item in value.items()}
        decoder = _DECODERS.get(kind)
        if decoder is None:
            message = (
                f"Unknown tagged value kind {kind!r} in a saved config. Expected "
                f"one of {sorted(_DECODERS)}. Received: {_short_repr(value)}. The "
                "file was probably written by a newer keras-serializable; "
                "upgrade it."
            )
            raise ConfigDecodeError(message)
        return decoder(value)
    return value


def _bad_tag(value: dict[str, Any], expected: str) -> ConfigDecodeError:
    kind = value.get(TAG)
    message = (
        f"Cannot decode a saved {kind!r} value: expected {expected}. Received: "
        f"{_short_repr(value)}. The file is corrupted or was not written by "
        "keras-serializable; do not load it."
    )
    return ConfigDecodeError(message)


def _items(value: dict[str, Any]) -> list[Any]:
    items = value.get("items")
    if type(items) is not list:
        raise _bad_tag(value, "an 'items' list")
    return items


def _decode_tuple(value: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(decode(item) for item in _items(value))


def _decode_dict(value: dict[str, Any]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for pair in _items(value):
        if type(pair) is not list or len(pair) != 2:
            raise _bad_tag(value, "'items' of [key, value] pairs")
        key = _hashable(decode(pair[0]))
        try:
            out[key] = decode(pair[1])
        except TypeError as err:
            if "unhashable" not in str(err):
                raise
            raise _bad_tag(value, "keys that can be dict keys") from err
    return out


def _hashable(key: Any) -> Any:
    return tuple(_hashable(k) for k in key) if isinstance(key, list) else key


# Tagged arrays: the dtypes `encode` writes, with bounded item sizes, and at
# most as many elements as the file holds values (or bytes) for.
_MAX_ITEMSIZE = 1 << 20
_MAX_NDIM = 32


def _array_dtype(value: dict[str, Any]) -> np.dtype[Any]:
    name = value.get("dtype")
    if type(name) is not str or len(name) > 32:
        raise _bad_tag(value, "a dtype name")
    try:
        dtype = np.dtype(name)
    except (TypeError, ValueError) as err:
        raise _bad_tag(value, "a numpy dtype name") from err
    if (
        dtype.kind not in _ARRAY_DTYPE_KINDS
        or dtype.fields is not None
        or dtype.subdtype is not None
        or dtype.itemsize > _MAX_ITEMSIZE
    ):
        raise _bad_tag(
            value,
            "a bool, int, float, complex or string dtype of at most "
            f"{_MAX_ITEMSIZE:,} bytes per item",
        )
    return dtype


def _array_shape(value: dict[str, Any]) -> tuple[int, ...]:
    shape = value.get("shape")
    if (
        type(shape) is not list
        or len(shape) > _MAX_NDIM
        or not all(type(d) is int and d >= 0 for d in shape)
    ):
        raise _bad_tag(value, f"a shape of at most {_MAX_NDIM} non-negative ints")
    return tuple(shape)


def _count_leaves(data: Any) -> int:
    """How many values nested lists hold, walked without recursion."""
    count = 0
    stack = [data]
    while stack:
        item = stack.pop()
        if type(item) is list:
            stack.extend(item)
        else:
            count += 1
    return count


def _decode_ndarray(value: dict[str, Any]) -> np.ndarray:
    dtype = _array_dtype(value)
    shape = _array_shape(value)
    size = 1
    for dim in shape:
        size *= dim
    if "data" in value:
        # Declared size checked against the values present before allocating.
        if size != _count_leaves(value["data"]):
            raise _bad_tag(
                value, f"'data' holding {size} values for shape {list(shape)}"
            )
        try:
            return np.array(value["data"], dtype=dtype).reshape(shape)
        except (TypeError, ValueError, OverflowError) as err:
            raise _bad_tag(value, f"'data' of {dtype} values") from err
    encoded = value.get("base64")
    if type(encoded) is not str:
        raise _bad_tag(value, "'data' or a 'base64' string")
    if size * dtype.itemsize != len(encoded) // 4 * 3 - encoded[-2:].count("="):
        raise _bad_tag(value, f"{size * dtype.itemsize} bytes for shape {list(shape)}")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except ValueError as err:
        raise _bad_tag(value, "valid base64") from err
    if len(raw) != size * dtype.itemsize:
        raise _bad_tag(value, f"{size * dtype.itemsize} bytes for shape {list(shape)}")
    little = np.frombuffer(raw, dtype=dtype.newbyteorder("<"))
    return little.astype(dtype).reshape(shape).copy()


def _decode_numpy_scalar(value: dict[str, Any]) -> Any:
    array = _decode_ndarray(value)
    if array.shape != ():
        raise _bad_tag(value, "shape [] for a scalar")
    return array[()]  # a 0-d array indexed by () is a numpy scalar


def _decode_enum(value: dict[str, Any]) -> enum.Enum:
    name = value.get("enum")
    if type(name) is not str:
        raise _bad_tag(value, "an Enum name")
    # Registered Enums only, looked up in the registry: no module a file names
    # is imported or searched, no attribute of anything is read.
    cls = _registry.registered_object(name)
    if not (isinstance(cls, type) and issubclass(cls, enum.Enum)):
        module_name = name.partition(":")[0] if ":" in name else None
        claim = (
            f" The file claims it comes from module {module_name!r}; if you trust "
            "the file and that is your module, import it so it registers the Enum "
            "(import only a trusted file's modules)."
            if module_name
            else " Import the module that registers it before loading."
        )
        message = (
            "Cannot restore Enum member "
            f"{_short_repr(value.get('member', value.get('value')))}: expected the "
            f"Enum class {name!r} to be registered with "
            "@serializable.register_keras_serializable(). Received: "
            f"enum={name!r}, which is not registered here.{claim}"
        )
        raise ConfigDecodeError(message)
    try:
        if "value" in value:
            found = cls(value["value"])
        else:
            member = value.get("member")
            if type(member) is not str:
                raise KeyError(member)
            found = cls[member]
    except (KeyError, ValueError, TypeError) as err:
        received = value.get("member", value.get("value"))
        message = (
            f"Cannot restore a member of Enum {name!r}: expected one of "
            f"{[m.name for m in cls]}. Received: {_short_repr(received)}, which "
            f"this version of {cls.__name__} does not have. Restore the member, "
            "or translate old configs with config_version and upgrade_config."
        )
        raise ConfigDecodeError(message) from err
    return found


def _decode_keras(value: dict[str, Any]) -> Any:
    config = value.get("config")
    if not isinstance(config, (dict, str)):
        raise _bad_tag(value, "a Keras object config")
    obj = keras.saving.deserialize_keras_object(config)
    if isinstance(obj, keras.layers.Layer):
        guard_rebuild(obj)
    return obj


_DECODERS = {
    "tuple": _decode_tuple,
    "dict": _decode_dict,
    "ndarray": _decode_ndarray,
    "numpy_scalar": _decode_numpy_scalar,
    "enum": _decode_enum,
    "keras": _decode_keras,
}


def guard_rebuild(layer: keras.layers.Layer) -> None:
    """Make `build()` a no-op on a layer that deserialization already built.

    See docs/pitfalls.md#child-built-twice.

    Keras rebuilds a nested layer from its saved build config; a parent whose
    own `build()` then builds the child again would try to create its weights
    a second time, which Keras refuses once the layer is locked.
    """
    build = layer.build
    if getattr(build, "_serializable_guard", False):
        return

    def build_once(*args: Any, **kwargs: Any) -> None:
        if layer.built:
            return
        build(*args, **kwargs)

    build_once._serializable_guard = True  # type: ignore[attr-defined]
    build_once.__signature__ = inspect.signature(build)  # type: ignore[attr-defined]
    layer.__dict__["build"] = build_once
