"""Legacy `.h5`: a writer and a reader that repair what Keras 3's own code breaks.

The layout stays the one Keras writes (`model_config`/`training_config`
attributes, `model_weights` and `optimizer_weights` groups), so files written
here still load in plain Keras where Keras can load them at all. On top (each
item is a section of docs/pitfalls.md):

* subclassed-models-in-h5: the top-level model is stored under its
  registered name (`"package>Name"`), not the bare class name, and its build
  information is in the generated config, so it reloads built;
* string-losses-in-h5: loss and metric names such as `"mse"` are compiled
  from strings instead of through Keras's legacy deserializer, which rejects
  them;
* mask-ops-in-h5: Keras operations recorded as layers (`NotEqual` from a
  mask) are found;
* optimizer-state-in-h5: optimizer slots are restored after compiling, so
  training resumes exactly;
* duplicate-weight-names: weights are stored under unique names, with each
  one's position in `layer.weights`, so two weights with the same name, or a
  `trainable` flag flipped after build, load into the right variables;
* a manifest (`serializable_manifest`) records the module of every custom
  class, so a missing one can be named with where it lived;
* every weight and optimizer slot carries a checksum (`serializable_checksum`),
  and an integrity record (`serializable_integrity`) covers every attribute
  (configs, manifest, layer and weight names, weight order, the checksums):
  any damage is reported by name on load (see docs/security.md).

For speed on large models: weights are written from views of the variables,
not copies, and on load every variable is created from its saved array
instead of being initialized and then assigned (`Unfilled`, also used for
`.keras` loads without an optimizer).

Nothing here imports a module named in a file, and Keras's safe mode stays on.
"""

from __future__ import annotations

import contextlib
import inspect
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h5py
import keras
import numpy as np

from . import _backends, _guard, _keras_compat
from ._errors import FormatLimitError, ModelFileError, SerializableError, docs_url
from ._inspect import MANIFEST_H5, FileContents

WEIGHT_INDEX = "serializable_weight_index"
CHECKSUM = "serializable_checksum"


def _checksum(value: np.ndarray) -> str:
    """The sum of an array's bytes read as little-endian 64-bit words, mod 2**64.

    A flipped bit `k` of a word changes the sum by 2**k (mod 2**64), never by
    zero, so any single flipped bit is detected, and so is any damage that is
    not an exact cancellation (random garbage, zeroed or shifted blocks) with
    probability 1 - 2**-64. One pass over the bytes, as cheap as reading them:
    ~2 ms per 64 MiB, computed on the arrays already in memory.
    """
    words, tail = _words(value)
    total = int(np.add.reduce(words, dtype=np.uint64)) if words.size else 0
    return f"s64:{(total + tail) % 2**64:016x}"


def _words(value: np.ndarray) -> tuple[np.ndarray, int]:
    """The array's bytes as 64-bit words (a view, no copy) and the last,
    partial word zero-padded, as an int."""
    raw = np.ascontiguousarray(value).reshape(-1).view(np.uint8)
    whole = raw.size - raw.size % 8
    tail = np.zeros(8, dtype=np.uint8)
    tail[: raw.size - whole] = raw[whole:]
    return raw[:whole].view("<u8"), int(tail.view("<u8")[0])


_CHECKSUMS = {"s64": _checksum}


def _damage(expected: str, value: np.ndarray) -> str | None:
    """None if `value` matches the stored checksum, else what was found."""
    kind = expected.partition(":")[0]
    algorithm = _CHECKSUMS.get(kind)
    if algorithm is None:  # a damaged attribute is a damaged file
        return f"a checksum of a kind this version does not know ({kind!r})"
    actual = algorithm(value)
    return None if actual == expected else f"data with checksum {actual}"


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------


def check_limits(model: keras.Model) -> None:
    """Refuse, before writing, what `.h5` cannot hold (suggesting `.keras`).

    `.h5` stores each top-level layer's weights in its own group; a variable
    reachable from two of them (a layer shared with a nested model, tied
    weights) would be stored twice and reload as two independent copies
    (docs/pitfalls.md#shared-layers-tied-weights).
    """
    owners: dict[int, set[str]] = {}
    paths: dict[int, str] = {}
    for layer in model.layers:
        for variable in layer.weights:
            owners.setdefault(id(variable), set()).add(layer.name)
            paths[id(variable)] = variable.path
    shared = sorted(paths[key] for key, names in owners.items() if len(names) > 1)
    if shared:
        message = (
            f"Cannot save model '{model.name}' as .h5: expected every variable to "
            "belong to one top-level layer. Received: variables shared between "
            f"layers ({', '.join(shared[:5])}), which .h5 would store twice and "
            "reload as separate copies. Save it as .keras instead; see "
            f"{docs_url('pitfalls', 'shared-layers-tied-weights')}"
        )
        raise FormatLimitError(message)


def save(model: keras.Model, path: Path, include_optimizer: bool = True) -> None:
    """Write `model` to `path` in the legacy `.h5` layout, with the repairs."""
    check_limits(model)
    try:
        metadata = _keras_compat.legacy_model_metadata(model, include_optimizer)
    except SerializableError:
        raise
    except Exception as err:
        if not _serializable_as_keras(model):
            raise  # the model's own config fails in any format: not a .h5 limit
        message = (
            f"Cannot save model '{model.name}' as .h5: expected a config "
            "Keras's legacy .h5 writer can store. Received: "
            f"{type(err).__name__}: {err}. Save it as .keras instead."
        )
        raise FormatLimitError(message) from err
    registered = _keras_compat.registered_name(type(model))
    if registered:
        metadata["model_config"]["class_name"] = registered
    notes = manifest(model, metadata)
    if model.built and not _keras_compat.is_functional(model):
        build_config = model.get_build_config()
        if build_config:
            notes["__build__"] = build_config
    notes[_guard.INTEGRITY_MARKER] = _guard.INTEGRITY_VERSION
    with h5py.File(path, "w") as handle:
        for key, value in metadata.items():
            if isinstance(value, (dict, list, tuple)):
                handle.attrs[key] = json.dumps(value, default=_json_default).encode()
            else:
                handle.attrs[key] = value
        handle.attrs[MANIFEST_H5] = json.dumps(notes).encode()
        _write_weights(handle.create_group("model_weights"), model)
        _write_own_state(handle, model)
        optimizer = getattr(model, "optimizer", None)
        if include_optimizer and optimizer is not None and optimizer.variables:
            _write_optimizer(handle, optimizer)
        # Last: a digest of every attribute written above (attributes only, so
        # it costs no pass over the weights, which carry their own checksums).
        handle.attrs[_guard.INTEGRITY_H5] = _guard.h5_record(handle)


def _json_default(obj: Any) -> Any:
    return _keras_compat.legacy_json_default(obj)


def manifest(model: keras.Model, config: Any = None) -> dict[str, Any]:
    """Registered name -> module of every custom class the model uses, plus
    notes Keras does not keep: the registered top-level class and whether the
    model's outputs are a tuple (docs/pitfalls.md#tuples).

    `config` is the model's config as the caller already serialized it (the
    `.keras` `config.json`, or the `.h5` metadata with its training config);
    without it the model is serialized again here.
    """
    if config is None:
        try:
            config = keras.saving.serialize_keras_object(model)
        except Exception:
            config = {}
    manifest: dict[str, Any] = {}
    for name in [*_registered_strings(config), *_top_names(model)]:
        obj = keras.saving.get_custom_objects().get(name)
        module = getattr(obj, "__module__", None)
        if module and module != "__main__":
            manifest[name] = module
    top = _keras_compat.registered_name(type(model))
    if top:
        manifest["__top__"] = top
    manifest["__backend__"] = keras.backend.backend()
    if isinstance(_keras_compat.outputs_structure(model), tuple):
        manifest["__outputs__"] = "tuple"
    frozen = [
        layer.path
        for layer in _keras_compat.flatten_layers(model)
        if not layer.trainable
    ]
    if frozen:
        manifest["__frozen__"] = frozen
    return manifest


def restore_notes(model: keras.Model, notes: dict[str, Any]) -> None:
    """Put back what the notes record: tuple outputs come back as tuples.

    See docs/pitfalls.md#tuples.
    """
    if notes.get("__outputs__") == "tuple":
        structure = _keras_compat.outputs_structure(model)
        if isinstance(structure, list):
            _keras_compat.set_outputs_structure(model, tuple(structure))
    # A sub-layer frozen after construction is in no config
    # (docs/pitfalls.md#duplicate-weight-names).
    frozen = set(notes.get("__frozen__", ()))
    if frozen:
        for layer in _keras_compat.flatten_layers(model):
            if layer.path in frozen and layer.trainable:
                layer.trainable = False


def _registered_strings(config: Any) -> list[str]:
    """Every string in a config that is a registered name, in order.

    Both config styles name a custom object by its registered name: the
    `.keras` style under "registered_name" (and "config" for functions), the
    legacy `.h5` style as "class_name" or as a bare string for functions.
    """
    registered = keras.saving.get_custom_objects()
    found: list[str] = []
    stack = [config]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if item in registered:
                found.append(item)
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, (list, tuple)):
            stack.extend(reversed(item))
    return found


def _top_names(model: keras.Model) -> list[str]:
    name = _keras_compat.registered_name(type(model))
    return [name] if name else []


def _write_weights(group: h5py.Group, model: keras.Model) -> None:
    keras_version = keras.version()
    layers = model.layers
    _keras_compat.save_h5_attributes(
        group, "layer_names", [layer.name.encode("utf8") for layer in layers]
    )
    group.attrs["backend"] = keras.backend.backend().encode("utf8")
    group.attrs["keras_version"] = str(keras_version).encode("utf8")
    for layer in sorted(layers, key=lambda x: x.name):
        _write_subset(
            group.create_group(layer.name),
            _keras_compat.legacy_weights(layer),
            layer.weights,
        )
    top = _top_level_weights(model)
    _write_subset(group.create_group("top_level_model_weights"), top, top)


def _top_level_weights(model: keras.Model) -> list[Any]:
    """The model's own weights (not its layers'), in Keras's legacy order.

    Matched by identity: `==` between Keras variables compares their values.
    """
    weights = {id(v) for v in model.weights}
    own = _keras_compat.own_variables(model)
    return [v for v in own if id(v) in weights]


def _write_subset(group: h5py.Group, weights: list[Any], order: list[Any]) -> None:
    """Datasets in Keras's legacy order, under unique names, with positions."""
    names: list[bytes] = []
    used: dict[str, int] = {}
    for variable in weights:
        name = str(variable.path)
        if name in used:
            used[name] += 1
            name = f"{name}__{used[name]}"  # a second weight with the same path
        else:
            used[name] = 0
        names.append(name.encode("utf8"))
    _keras_compat.save_h5_attributes(group, "weight_names", names)
    positions = [next(i for i, w in enumerate(order) if w is v) for v in weights]
    group.attrs[WEIGHT_INDEX] = np.asarray(positions, dtype="int64")
    for encoded, variable in zip(names, weights, strict=True):
        value = _backends.array_view(variable)
        dataset = _write_array(group, encoded, value)
        # A checksum of every weight: a flipped bit becomes a clear error at
        # load instead of a silently different model (.h5 has none of its own).
        dataset.attrs[CHECKSUM] = _checksum(value)


def _write_optimizer(handle: h5py.File, optimizer: Any) -> None:
    """Keras's legacy optimizer layout (`legacy_h5_format.
    save_optimizer_weights_to_hdf5_group`), written from views, not copies."""
    variables = optimizer.variables
    group = handle.create_group("optimizer_weights")
    names: list[bytes] = []
    used: dict[str, int] = {}
    for variable in variables:
        name = str(variable.path)
        if name in used:  # Adafactor: two slots share a path
            used[name] += 1
            name = f"{name}__{used[name]}"
        else:
            used[name] = 0
        names.append(name.encode("utf8"))
    _keras_compat.save_h5_attributes(group, "weight_names", names)
    for encoded, variable in zip(names, variables, strict=True):
        value = _backends.array_view(variable)
        _write_array(group, encoded, value).attrs[CHECKSUM] = _checksum(value)


def _write_array(group: h5py.Group, name: bytes, value: np.ndarray) -> h5py.Dataset:
    dataset = group.create_dataset(name, value.shape, dtype=value.dtype)
    if value.shape:
        dataset[:] = value
    else:
        dataset[()] = value
    return dataset


# ---------------------------------------------------------------------------
# State kept outside weights: Keras's save_own_variables / save_assets hooks
# ---------------------------------------------------------------------------

OWN_STATE = "serializable_own_state"
_STATE_HOOKS = (
    "save_own_variables",
    "load_own_variables",
    "save_assets",
    "load_assets",
)


def _keeps_own_state(layer: Any) -> bool:
    """Whether a class between `layer`'s and Keras's `Layer` overrides one of
    the hooks `.keras` uses for state that is not (only) weights: adapted
    preprocessing layers' vocabularies and statistics, or a user's own."""
    for klass in type(layer).__mro__:
        if klass is keras.layers.Layer or klass is keras.Model:
            return False
        module = getattr(klass, "__module__", "")
        if _keras_compat.hooks_hold_only_weights(module):
            continue
        if any(hook in klass.__dict__ for hook in _STATE_HOOKS):
            return True
    return False


def _state_layers(model: keras.Model) -> list[Any]:
    return [
        layer
        for layer in _keras_compat.flatten_layers(model, include_self=True)
        if layer.path and _keeps_own_state(layer)
    ]


def _write_own_state(handle: h5py.File, model: keras.Model) -> None:
    """What `.keras` would store through each layer's own hooks, so `.h5`
    reloads it exactly (Keras's own `.h5` writer drops it)."""
    import tempfile

    layers = _state_layers(model)
    if not layers:
        return
    root = handle.create_group(OWN_STATE)
    for index, layer in enumerate(layers):
        group = root.create_group(str(index))
        group.attrs["path"] = layer.path.encode("utf8")
        store: dict[str, Any] = {}
        layer.save_own_variables(store)
        variables = group.create_group("variables")
        for key, value in store.items():
            array = np.asarray(keras.ops.convert_to_numpy(value))
            if array.dtype.kind in "OU":
                array = np.asarray(array.astype(str), dtype=h5py.string_dtype())
            variables.create_dataset(key, data=array)
        assets = group.create_group("assets")
        with tempfile.TemporaryDirectory(prefix="serializable-assets-") as folder:
            if hasattr(layer, "save_assets"):
                layer.save_assets(folder)
            for file in sorted(Path(folder).rglob("*")):
                if file.is_file():
                    name = file.relative_to(folder).as_posix()
                    assets.create_dataset(
                        name.replace("/", "\\"), data=np.void(file.read_bytes())
                    )


def _load_own_state(handle: h5py.File, model: keras.Model) -> None:
    """Give back what `_write_own_state` stored; for files without it (plain
    Keras's), finish adapted layers as Keras's `.h5` loader does."""
    import tempfile

    stored = {}
    if OWN_STATE in handle:
        for group in handle[OWN_STATE].values():
            stored[_text(group.attrs["path"])] = group
    for layer in _state_layers(model):
        group = stored.get(layer.path)
        if group is None:
            finalize = getattr(layer, "finalize_state", None)
            if callable(finalize) and layer.weights:
                finalize()
            continue
        store = {}
        for key, dataset in group["variables"].items():
            value = dataset[()]
            if dataset.dtype.kind == "O":
                value = np.asarray(dataset.asstr()[()])
            store[key] = value
        layer.load_own_variables(store)
        if len(group["assets"]) and hasattr(layer, "load_assets"):
            with tempfile.TemporaryDirectory(prefix="serializable-assets-") as folder:
                for name, dataset in group["assets"].items():
                    target = Path(folder, *name.split("\\"))
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(dataset[()].tobytes())
                layer.load_assets(folder)


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------


def load_open(
    handle: h5py.File,
    contents: FileContents,
    compile: bool,
    custom_objects: dict[str, Any] | None,
    optimizer_state: bool = True,
    *,
    safe_mode: bool = True,
) -> Any:
    """Load an `.h5` model written by this module or by plain Keras 3.

    `handle` and `contents` come from `_inspect.opened`, which has read the
    metadata; `contents.model_config` is consumed (Keras's loader edits it).
    `optimizer_state=False` compiles (with `compile`) without restoring the
    optimizer's saved variables. `safe_mode` is Keras's (`load_model`'s
    explicit opt-out for trusted files).
    """
    path = contents.path
    model_config = contents.model_config
    objects = {**_operation_classes(model_config), **(custom_objects or {})}
    unfilled = Unfilled()
    # Files with an integrity record must have a checksum on every dataset.
    required = _guard.INTEGRITY_MARKER in contents.notes
    # Safe unless the user passed safe_mode=False or turned it off for the
    # process, as Keras's own `.keras` loader honours
    # `keras.config.enable_unsafe_deserialization()`.
    safe = safe_mode and _keras_compat.process_safe_mode()
    with _keras_compat.legacy_loading_scope(safe):
        model = _build(handle, model_config, objects, unfilled, contents.notes)
        try:
            _load_weights(handle["model_weights"], model, unfilled, required)
        except ModelFileError as err:
            message = f"Cannot load {str(path)!r}: {err}"
            raise ModelFileError(message) from err
    unfilled.finish()
    _load_own_state(handle, model)
    training = contents.compile_config
    if compile and training is not None:
        compiled = _compile(model, training, objects)
        if compiled and optimizer_state and "optimizer_weights" in handle:
            try:
                _load_optimizer(handle["optimizer_weights"], model, required)
            except ModelFileError as err:
                message = f"Cannot load {str(path)!r}: {err}"
                raise ModelFileError(message) from err
    return model


def _build(
    handle: h5py.File,
    model_config: dict[str, Any],
    objects: dict[str, Any],
    unfilled: Unfilled,
    notes: dict[str, Any] | None = None,
) -> Any:
    """The model from its config, its variables left for the file to fill."""
    unused = [model_config]
    # A retry needs a fresh copy of the config as given (a Keras 2 file's is
    # translated, not the file's own): Keras's legacy loader edits it.
    given = json.dumps(model_config)
    notes = notes or {}

    def build() -> Any:
        config = unused.pop() if unused else json.loads(given)
        model = _keras_compat.legacy_model_from_config(config, objects)
        _rebuild(model, notes)
        return model

    return unfilled.build(build)


def _rebuild(model: Any, notes: dict[str, Any]) -> None:
    """Build a subclassed model from the build information `save` noted, which
    a hand-written `get_config` leaves out of the config (`.h5` has no other
    place for it)."""
    build_config = notes.get("__build__")
    if not build_config or model.built:
        return
    model.build_from_config(build_config)
    if all(layer.built for layer in _keras_compat.flatten_layers(model)):
        model.built = True


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


def _text(value: Any) -> Any:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _operation_classes(config: Any) -> dict[str, Any]:
    """Keras ops saved as layers, e.g. `NotEqual` from a mask (mask-ops-in-h5).

    Legacy `.h5` records them by bare class name, which the legacy loader
    looks up among layers only; they are Keras's own classes in `keras.ops`.
    """
    found: dict[str, Any] = {}
    for class_name in _class_names(config):
        if class_name in _keras_compat.keras_builtin_names() or class_name in found:
            continue
        cls = _keras_compat.operation_class(class_name)
        if cls is not None:
            found[class_name] = cls
    return found


def _class_names(config: Any) -> set[str]:
    names: set[str] = set()
    if isinstance(config, dict):
        if isinstance(config.get("class_name"), str):
            names.add(config["class_name"])
        for value in config.values():
            names |= _class_names(value)
    elif isinstance(config, list):
        for value in config:
            names |= _class_names(value)
    return names


def _serializable_as_keras(model: Any) -> bool:
    """Whether the `.keras` writer could serialize `model`'s config (called
    only after the legacy `.h5` writer failed, to tell a `.h5` limit from an
    error in the model's own `get_config`)."""
    try:
        keras.saving.serialize_keras_object(model)
    except Exception:
        return False
    return True


def _load_weights(
    group: h5py.Group, model: keras.Model, unfilled: Unfilled, required: bool = False
) -> None:
    layers = [layer for layer in model.layers if _keras_compat.legacy_weights(layer)]
    names = [
        name
        for name in _keras_compat.load_h5_attributes(group, "layer_names")
        if _keras_compat.load_h5_attributes(group[name], "weight_names")
    ]
    if len(names) != len(layers):
        message = (
            f"Cannot load the weights of model '{model.name}': expected "
            f"{len(layers)} layers with weights, as the config builds. Received: "
            f"{len(names)} in the file ({names[:8]}). The file and its config do "
            "not match; it was probably edited or written by different code."
        )
        raise ValueError(message)
    for name, layer in zip(names, layers, strict=True):
        _load_subset(
            group[name],
            layer,
            _keras_compat.legacy_weights(layer),
            layer.weights,
            unfilled,
            required,
        )
    if "top_level_model_weights" in group:
        top = _top_level_weights(model)
        _load_subset(
            group["top_level_model_weights"], model, top, top, unfilled, required
        )


def _load_subset(
    group: h5py.Group,
    owner: Any,
    legacy: list[Any],
    order: list[Any],
    unfilled: Unfilled,
    required: bool = False,
) -> None:
    names = _keras_compat.load_h5_attributes(group, "weight_names")
    if WEIGHT_INDEX in group.attrs:
        index = np.asarray(group.attrs[WEIGHT_INDEX]).reshape(-1)
        if (
            index.dtype.kind not in "iu"
            or sorted(index.tolist()) != list(range(len(index)))
            or len(index) > len(order)
        ):
            message = (
                f"the weight index of layer '{owner.name}' is damaged: expected a "
                f"permutation of 0..{len(order) - 1}. Received: "
                f"{index.tolist()[:16]}. The file is corrupted; save or copy it "
                "again."
            )
            raise ModelFileError(message)
        targets = [order[int(i)] for i in index]
    else:
        targets = legacy
    if len(names) != len(targets):
        message = (
            f"Cannot load the weights of layer '{owner.name}': expected "
            f"{len(targets)} weights. Received: {len(names)} in the file. The file "
            "and its config do not match."
        )
        raise ValueError(message)
    # One weight at a time: read, checked, then the variable made from it, so
    # at most one array is held besides the variables.
    for name, variable in zip(names, targets, strict=True):
        dataset = group[name]
        if tuple(variable.shape) != dataset.shape:
            message = (
                f"Cannot load weight '{variable.path}' of layer '{owner.name}': "
                f"expected shape {tuple(variable.shape)}. Received: "
                f"{dataset.shape}. The file and its config do not match."
            )
            raise ValueError(message)
        value = np.asarray(dataset)
        _check_data(
            dataset, value, f"weight {name!r} of layer '{owner.name}'", required
        )
        unfilled.fill(variable, value)


def _check_data(dataset: Any, value: np.ndarray, what: str, required: bool) -> None:
    """Compare `value` with the dataset's checksum; a file with an integrity
    record must have one on every dataset."""
    expected = _text(dataset.attrs.get(CHECKSUM))
    if expected is None:
        if not required:
            return
        actual: str | None = "no checksum attribute (it was removed)"
        expected = "an s64 checksum"
    elif not isinstance(expected, str):
        actual = f"a checksum attribute of type {type(expected).__name__}"
    else:
        actual = _damage(expected, value)
    if actual is not None:
        message = (
            f"{what} is damaged: expected checksum {expected}. Received: "
            f"{actual}. The file is corrupted; save or copy it again."
        )
        raise ModelFileError(message)


def _compile(
    model: keras.Model, training: dict[str, Any], objects: dict[str, Any]
) -> bool:
    """Compile from a legacy training config; strings stay strings. False
    when the model's own `compile` does not take them (`compile_takes`).

    See docs/pitfalls.md#string-losses-in-h5.
    """
    optimizer_config = training["optimizer_config"]
    name = (
        optimizer_config.get("class_name")
        if isinstance(optimizer_config, dict)
        else None
    )
    # vars(), not getattr: a name from a file never reaches a module's
    # __getattr__.
    keras_class = vars(keras.optimizers).get(name) if isinstance(name, str) else None
    if isinstance(name, str) and inspect.isclass(keras_class) and name not in objects:
        # Keras's legacy deserializer knows only the older optimizers (Lamb: no).
        objects = {**objects, name: keras_class}
    with keras.saving.custom_object_scope(objects):
        optimizer = keras.optimizers.deserialize(optimizer_config)
        loss = _nested(training.get("loss"), keras.losses.deserialize, objects)
        metrics = _nested(training.get("metrics"), keras.metrics.deserialize, objects)
        weighted = _nested(
            training.get("weighted_metrics"), keras.metrics.deserialize, objects
        )
    arguments = {
        "optimizer": optimizer,
        "loss": loss,
        "metrics": metrics,
        "weighted_metrics": weighted,
        "loss_weights": training.get("loss_weights"),
    }
    if not compile_takes(model, arguments):
        return False
    model.compile(**arguments)
    return True


def compile_takes(model: keras.Model, arguments: dict[str, Any]) -> bool:
    """Whether the model's `compile` takes the saved compile arguments; if not
    (a GAN's `compile(d_optimizer, g_optimizer, loss_fn)`, whose arguments no
    file records), warn that the model stays uncompiled, as Keras does."""
    try:
        inspect.signature(model.compile).bind(**arguments)
    except TypeError:
        import warnings

        warnings.warn(
            f"Model '{model.name}' was not compiled on load: its class's "
            "compile() does not take the saved compile arguments "
            f"({', '.join(sorted(arguments))}). Call compile() after loading, "
            "or give the class get_compile_config() and "
            "compile_from_config(config).",
            stacklevel=4,
        )
        return False
    return True


def _named(name: str, objects: dict[str, Any]) -> Any:
    """A loss or metric named by a string: the registered or passed custom
    function it names (Keras's `compile` cannot look those up), else the
    string itself, which Keras interprets ("mse", "accuracy"; see
    docs/pitfalls.md#string-losses-in-h5)."""
    registered = keras.saving.get_custom_objects()
    for key in (name, name.rsplit(">", 1)[-1]):
        if key in objects:
            return objects[key]
    if name in registered:
        return registered[name]
    # A Keras function compile cannot look up by name ("huber" as a metric).
    from ._keras_compat import keras_builtin_function

    found = keras_builtin_function(name) if ">" not in name else None
    if inspect.isfunction(found):
        return found
    return name


def _nested(
    config: Any, deserialize: Any, objects: dict[str, Any] | None = None
) -> Any:
    if config is None:
        return config
    if isinstance(config, str):
        return config if objects is None else _named(config, objects)
    if isinstance(config, dict) and "class_name" in config:
        return deserialize(config)
    if isinstance(config, dict):
        return {
            key: _nested(value, deserialize, objects) for key, value in config.items()
        }
    if isinstance(config, (list, tuple)):
        return [_nested(value, deserialize, objects) for value in config]
    return config


def _load_optimizer(
    group: h5py.Group, model: keras.Model, required: bool = False
) -> None:
    """Restore optimizer iterations and slots so training resumes exactly.

    See docs/pitfalls.md#optimizer-state-in-h5.
    """
    optimizer = model.optimizer
    names = _keras_compat.load_h5_attributes(group, "weight_names")
    datasets = [group[name] for name in names]
    # The slots are created from the saved arrays, not as zeros then assigned.
    unfilled = Unfilled()
    if len(optimizer.variables) != len(datasets):
        # Saved after training: slots exist. Saved before any step: only the
        # iteration count and learning rate, like this unbuilt optimizer.
        with unfilled.creating(_keras_optimizer(optimizer)):
            optimizer.build(model.trainable_variables)
    variables = optimizer.variables
    if len(variables) != len(datasets) or any(
        tuple(v.shape) != d.shape for v, d in zip(variables, datasets, strict=False)
    ):
        import warnings

        unfilled.finish()
        warnings.warn(
            f"Optimizer state of model '{model.name}' in the file does not match "
            f"the rebuilt optimizer ({len(datasets)} saved variables, "
            f"{len(variables)} expected); training restarts with a fresh "
            "optimizer state.",
            stacklevel=3,
        )
        return
    for name, variable, dataset in zip(names, variables, datasets, strict=True):
        value = np.asarray(dataset)
        _check_data(dataset, value, f"optimizer variable {name!r}", required)
        unfilled.fill(variable, value)
    unfilled.finish()


# Keras optimizers whose `build` only creates variables from initializers, so
# it can run unfilled: each is trained, saved and reloaded in both formats by
# the sweep (tests/test_sweep.py), which checks this list. Any other optimizer
# (Nadam and Adafactor make variables from values, ScheduleFreeAdamW assigns
# while building, a custom one may do anything) is built the ordinary way.
UNFILLED_OPTIMIZERS = frozenset(
    {
        "Adadelta",
        "Adagrad",
        "Adam",
        "AdamW",
        "Adamax",
        "Ftrl",
        "Lamb",
        "Lion",
        "LossScaleOptimizer",
        "Muon",
        "RMSprop",
        "SGD",
    }
)


def _keras_optimizer(optimizer: Any) -> bool:
    """Whether `optimizer` (and any it wraps) is one of Keras's own whose `build`
    is known to run unfilled (`UNFILLED_OPTIMIZERS`)."""
    while optimizer is not None:
        cls = type(optimizer)
        if getattr(keras.optimizers, cls.__name__, None) is not cls:
            return False
        if cls.__name__ not in UNFILLED_OPTIMIZERS:
            return False
        optimizer = getattr(optimizer, "inner_optimizer", None)
    return True
