"""Legacy `.h5`: a writer and a reader that repair what Keras 3's own code breaks.

The layout stays the one Keras writes (`model_config`/`training_config`
attributes, `model_weights` and `optimizer_weights` groups), so files written
here still load in plain Keras where Keras can load them at all. On top:

* P6: the top-level model is stored under its registered name
  (`"package>Name"`), not the bare class name, and its build information is in
  the generated config, so it reloads built;
* P7: loss and metric names such as `"mse"` are compiled from strings instead
  of through Keras's legacy deserializer, which rejects them;
* P12: Keras operations recorded as layers (`NotEqual` from a mask) are found;
* P15: optimizer slots are restored after compiling, so training resumes
  exactly;
* P19: weights are stored under unique names, with each one's position in
  `layer.weights`, so two weights with the same name, or a `trainable` flag
  flipped after build, load into the right variables;
* a manifest (`serializable_manifest`) records the module of every custom
  class, so a missing one can be named with where it lived;
* every weight carries a checksum (`serializable_checksum`), checked on load.

For speed on large models: weights are written from views of the variables,
not copies, and on load every variable is created from its saved array
instead of being initialized and then assigned (`Unfilled`, also used for
`.keras` loads without an optimizer).

Nothing here imports a module named in a file, and Keras's safe mode stays on.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h5py
import keras
import numpy as np
from keras.src.legacy.saving import legacy_h5_format, saving_options, saving_utils
from keras.src.saving import object_registration, serialization_lib

from . import _backends
from ._errors import FormatLimitError, ModelFileError, SerializableError
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


def _checksum_xs64(value: np.ndarray) -> str:
    """XOR and sum of the 64-bit words: what files saved before "s64" carry.

    Only read now. The XOR added nothing the sum does not catch but a pair of
    same-direction flips of bit 63, and cost a second pass over the data.
    """
    words, tail = _words(value)
    xor = int(np.bitwise_xor.reduce(words)) if words.size else 0
    total = int(np.add.reduce(words, dtype=np.uint64)) if words.size else 0
    return f"xs64:{xor ^ tail:016x}{(total + tail) % 2**64:016x}"


def _words(value: np.ndarray) -> tuple[np.ndarray, int]:
    """The array's bytes as 64-bit words (a view, no copy) and the last,
    partial word zero-padded, as an int."""
    raw = np.ascontiguousarray(value).reshape(-1).view(np.uint8)
    whole = raw.size - raw.size % 8
    tail = np.zeros(8, dtype=np.uint8)
    tail[: raw.size - whole] = raw[whole:]
    return raw[:whole].view("<u8"), int(tail.view("<u8")[0])


_CHECKSUMS = {"s64": _checksum, "xs64": _checksum_xs64}


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
    weights) would be stored twice and reload as two independent copies (P11).
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
            "reload as separate copies (P11). Save it as .keras instead."
        )
        raise FormatLimitError(message)


def save(model: keras.Model, path: Path, include_optimizer: bool = True) -> None:
    """Write `model` to `path` in the legacy `.h5` layout, with the repairs."""
    check_limits(model)
    with keep_compile_config(model):
        with saving_options.keras_option_scope(use_legacy_config=True):
            try:
                metadata = saving_utils.model_metadata(model, include_optimizer)
            except SerializableError:
                raise
            except Exception as err:
                message = (
                    f"Cannot save model '{model.name}' as .h5: expected a config "
                    "Keras's legacy .h5 writer can store. Received: "
                    f"{type(err).__name__}: {err}. Save it as .keras instead."
                )
                raise FormatLimitError(message) from err
    registered = object_registration.GLOBAL_CUSTOM_NAMES.get(type(model))
    if registered:
        metadata["model_config"]["class_name"] = registered
    notes = manifest(model, metadata)
    if model.built and not _functional(model):
        build_config = model.get_build_config()
        if build_config:
            notes["__build__"] = build_config
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


def _functional(model: Any) -> bool:
    from keras.src.models.functional import Functional

    return isinstance(model, Functional)


@contextlib.contextmanager
def keep_compile_config(model: keras.Model) -> Iterator[None]:
    """Undo Keras's legacy `.h5` writer popping "optimizer" out of the model's
    own compile config (a later `.keras` save would then lose the optimizer)."""
    compile_config = getattr(model, "_compile_config", None)
    kept = dict(compile_config.config) if compile_config is not None else None
    try:
        yield
    finally:
        if compile_config is not None and kept is not None:
            compile_config.config.clear()
            compile_config.config.update(kept)


def _json_default(obj: Any) -> Any:
    from keras.src.legacy.saving import json_utils

    return json_utils.get_json_type(obj)


def manifest(model: keras.Model, config: Any = None) -> dict[str, Any]:
    """Registered name -> module of every custom class the model uses, plus
    notes Keras does not keep: the registered top-level class and whether the
    model's outputs are a tuple (P4).

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
        obj = object_registration.GLOBAL_CUSTOM_OBJECTS.get(name)
        module = getattr(obj, "__module__", None)
        if module and module != "__main__":
            manifest[name] = module
    top = object_registration.GLOBAL_CUSTOM_NAMES.get(type(model))
    if top:
        manifest["__top__"] = top
    manifest["__backend__"] = keras.backend.backend()
    if isinstance(getattr(model, "_outputs_struct", None), tuple):
        manifest["__outputs__"] = "tuple"
    frozen = [
        layer.path
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if not layer.trainable
    ]
    if frozen:
        manifest["__frozen__"] = frozen
    return manifest


def restore_notes(model: keras.Model, notes: dict[str, Any]) -> None:
    """Put back what the notes record: tuple outputs come back as tuples (P4)."""
    if notes.get("__outputs__") == "tuple":
        structure = getattr(model, "_outputs_struct", None)
        if isinstance(structure, list):
            model._outputs_struct = tuple(structure)
    # A sub-layer frozen after construction is in no config (P19).
    frozen = set(notes.get("__frozen__", ()))
    if frozen:
        for layer in model._flatten_layers(include_self=False, recursive=True):
            if layer.path in frozen and layer.trainable:
                layer.trainable = False


def _registered_strings(config: Any) -> list[str]:
    """Every string in a config that is a registered name, in order.

    Both config styles name a custom object by its registered name: the
    `.keras` style under "registered_name" (and "config" for functions), the
    legacy `.h5` style as "class_name" or as a bare string for functions.
    """
    registered = object_registration.GLOBAL_CUSTOM_OBJECTS
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
    name = object_registration.GLOBAL_CUSTOM_NAMES.get(type(model))
    return [name] if name else []


def _write_weights(group: h5py.Group, model: keras.Model) -> None:
    from keras.src import __version__ as keras_version

    layers = model.layers
    legacy_h5_format.save_attributes_to_hdf5_group(
        group, "layer_names", [layer.name.encode("utf8") for layer in layers]
    )
    group.attrs["backend"] = keras.backend.backend().encode("utf8")
    group.attrs["keras_version"] = str(keras_version).encode("utf8")
    for layer in sorted(layers, key=lambda x: x.name):
        _write_subset(
            group.create_group(layer.name),
            legacy_h5_format._legacy_weights(layer),
            layer.weights,
        )
    top = _top_level_weights(model)
    _write_subset(group.create_group("top_level_model_weights"), top, top)


def _top_level_weights(model: keras.Model) -> list[Any]:
    """The model's own weights (not its layers'), in Keras's legacy order.

    Matched by identity: `==` between Keras variables compares their values.
    """
    weights = {id(v) for v in model.weights}
    own = model._trainable_variables + model._non_trainable_variables
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
    legacy_h5_format.save_attributes_to_hdf5_group(group, "weight_names", names)
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
    legacy_h5_format.save_attributes_to_hdf5_group(group, "weight_names", names)
    for encoded, variable in zip(names, variables, strict=True):
        _write_array(group, encoded, _backends.array_view(variable))


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
# Keras layers that override the hooks only for quantization or LoRA: their
# store is their weights, which `.h5` already holds.
_WEIGHTS_ONLY_MODULES = ("keras.src.layers.core.", "keras.src.layers.convolutional.")


def _keeps_own_state(layer: Any) -> bool:
    """Whether a class between `layer`'s and Keras's `Layer` overrides one of
    the hooks `.keras` uses for state that is not (only) weights: adapted
    preprocessing layers' vocabularies and statistics, or a user's own."""
    for klass in type(layer).__mro__:
        if klass is keras.layers.Layer or klass is keras.Model:
            return False
        module = getattr(klass, "__module__", "")
        if module.startswith(_WEIGHTS_ONLY_MODULES) or module.startswith(
            ("keras.src.models.", "keras.src.engine.")
        ):
            continue
        if any(hook in klass.__dict__ for hook in _STATE_HOOKS):
            return True
    return False


def _state_layers(model: keras.Model) -> list[Any]:
    return [
        layer
        for layer in model._flatten_layers(include_self=True, recursive=True)
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
) -> Any:
    """Load an `.h5` model written by this module or by plain Keras 3.

    `handle` and `contents` come from `_inspect.opened`, which has read the
    metadata; `contents.model_config` is consumed (Keras's loader edits it).
    `optimizer_state=False` compiles (with `compile`) without restoring the
    optimizer's saved variables.
    """
    path = contents.path
    model_config = contents.model_config
    objects = {**_operation_classes(model_config), **(custom_objects or {})}
    unfilled = Unfilled()
    with (
        saving_options.keras_option_scope(use_legacy_config=True),
        # Safe unless the user turned it off for the process, as Keras's own
        # `.keras` loader honours `keras.config.enable_unsafe_deserialization()`.
        serialization_lib.SafeModeScope(serialization_lib.in_safe_mode() is not False),
    ):
        model = _build(handle, model_config, objects, unfilled, contents.notes)
        try:
            _load_weights(handle["model_weights"], model, unfilled)
        except ModelFileError as err:
            message = f"Cannot load {str(path)!r}: {err}"
            raise ModelFileError(message) from err
    unfilled.finish()
    _load_own_state(handle, model)
    training = contents.compile_config
    if compile and training is not None:
        _compile(model, training, objects)
        if optimizer_state and "optimizer_weights" in handle:
            _load_optimizer(handle["optimizer_weights"], model)
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
    notes = notes or {}

    def build() -> Any:
        # A retry needs a fresh copy: Keras's legacy loader edits the config.
        if unused:
            config = unused.pop()
        else:
            config = json.loads(_text(handle.attrs["model_config"]))
        model = saving_utils.model_from_config(config, custom_objects=objects)
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
    if all(layer.built for layer in model._flatten_layers(include_self=False)):
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
        from keras.src.backend.common import global_state
        from keras.src.backend.common.stateless_scope import in_stateless_scope

        tested = _backends.creates_unfilled_variables()
        if not (enabled and tested) or in_stateless_scope():
            yield False
            return
        registry = "uninitialized_variables"  # Keras's per-thread list of them
        listed = global_state.get_global_attribute(registry, []) or []
        known = {id(v) for v in listed}
        scope = _Recording()
        try:
            with scope:
                yield True
        finally:
            listed = global_state.get_global_attribute(registry, []) or []
            for variable in listed:
                if id(variable) not in known:
                    self._pending[id(variable)] = variable
            # Ours to initialize: a later `initialize_all_variables` must not.
            kept = [v for v in listed if id(v) in known]
            global_state.set_global_attribute(registry, kept)
            for ident, variable in scope.assigned.items():
                self._assigned[ident] = (variable, scope.get_current_value(variable))

    def fill(self, variable: Any, value: Any) -> None:
        """Give `variable` the saved `value`: created from it, or assigned."""
        self._assigned.pop(id(variable), None)
        if self._pending.pop(id(variable), None) is None:
            variable.assign(value)
            return
        variable._initializer = _constant(value)
        variable._deferred_initialize()

    def finish(self) -> None:
        """Give every variable left the value assigned to it in the block, or
        else (if it has none yet) its own initial value."""
        assigned, self._assigned = self._assigned, {}
        for variable, value in assigned.values():
            self.fill(variable, value)
        pending, self._pending = self._pending, {}
        for variable in pending.values():
            variable._deferred_initialize()

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


_OPS_MODULES = ("numpy", "nn", "math", "core", "linalg", "image")


def _operation_classes(config: Any) -> dict[str, Any]:
    """Keras ops saved as layers (P12), e.g. `NotEqual` from a mask.

    Legacy `.h5` records them by bare class name, which the legacy loader
    looks up among layers only; they are Keras's own classes in `keras.ops`.
    """
    from keras.src import layers
    from keras.src.ops.operation import Operation

    found: dict[str, Any] = {}
    for class_name in _class_names(config):
        if class_name in layers.__dict__ or class_name in found:
            continue
        for module_name in _OPS_MODULES:
            module = importlib.import_module(f"keras.src.ops.{module_name}")
            cls = getattr(module, class_name, None)
            if isinstance(cls, type) and issubclass(cls, Operation):
                found[class_name] = cls
                break
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


def _load_weights(group: h5py.Group, model: keras.Model, unfilled: Unfilled) -> None:
    layers = [
        layer for layer in model.layers if legacy_h5_format._legacy_weights(layer)
    ]
    names = [
        name
        for name in legacy_h5_format.load_attributes_from_hdf5_group(
            group, "layer_names"
        )
        if legacy_h5_format.load_attributes_from_hdf5_group(group[name], "weight_names")
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
            legacy_h5_format._legacy_weights(layer),
            layer.weights,
            unfilled,
        )
    if "top_level_model_weights" in group:
        top = _top_level_weights(model)
        _load_subset(group["top_level_model_weights"], model, top, top, unfilled)


def _load_subset(
    group: h5py.Group,
    owner: Any,
    legacy: list[Any],
    order: list[Any],
    unfilled: Unfilled,
) -> None:
    names = legacy_h5_format.load_attributes_from_hdf5_group(group, "weight_names")
    if WEIGHT_INDEX in group.attrs:
        targets = [order[int(i)] for i in group.attrs[WEIGHT_INDEX]]
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
        expected = _text(dataset.attrs.get(CHECKSUM))
        actual = None if expected is None else _damage(expected, value)
        if actual is not None:
            message = (
                f"weight {name!r} of layer '{owner.name}' is damaged: expected "
                f"checksum {expected}. Received: {actual}. "
                "The file is corrupted; save or copy it again."
            )
            raise ModelFileError(message)
        unfilled.fill(variable, value)


def _compile(
    model: keras.Model, training: dict[str, Any], objects: dict[str, Any]
) -> None:
    """Compile from a legacy training config; strings stay strings (P7)."""
    optimizer_config = training["optimizer_config"]
    name = (
        optimizer_config.get("class_name")
        if isinstance(optimizer_config, dict)
        else None
    )
    keras_class = (
        getattr(keras.optimizers, name, None) if isinstance(name, str) else None
    )
    if inspect.isclass(keras_class) and name not in objects:
        # Keras's legacy deserializer knows only the older optimizers (Lamb: no).
        objects = {**objects, name: keras_class}
    with object_registration.CustomObjectScope(objects):
        optimizer = keras.optimizers.deserialize(optimizer_config)
        loss = _nested(training.get("loss"), keras.losses.deserialize, objects)
        metrics = _nested(training.get("metrics"), keras.metrics.deserialize, objects)
        weighted = _nested(
            training.get("weighted_metrics"), keras.metrics.deserialize, objects
        )
    model.compile(
        optimizer=optimizer,
        loss=loss,
        metrics=metrics,
        weighted_metrics=weighted,
        loss_weights=training.get("loss_weights"),
    )


def _named(name: str, objects: dict[str, Any]) -> Any:
    """A loss or metric named by a string: the registered or passed custom
    function it names (Keras's `compile` cannot look those up), else the
    string itself, which Keras interprets ("mse", "accuracy": P7)."""
    registered = object_registration.GLOBAL_CUSTOM_OBJECTS
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


def _load_optimizer(group: h5py.Group, model: keras.Model) -> None:
    """Restore optimizer iterations and slots so training resumes exactly (P15)."""
    optimizer = model.optimizer
    names = legacy_h5_format.load_attributes_from_hdf5_group(group, "weight_names")
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
    for variable, dataset in zip(variables, datasets, strict=True):
        unfilled.fill(variable, np.asarray(dataset))
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
