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
instead of being initialized and then assigned (`_fastbuild.Unfilled`).
What both formats write and read besides (the manifest, compiling from a
training config) is in `_manifest` and `_compile`.

Nothing here imports a module named in a file, and Keras's safe mode stays on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import keras
import numpy as np

from . import (
    _backends,
    _compile,
    _configwalk,
    _fastbuild,
    _guard,
    _keras_compat,
    _manifest,
    _registry,
)
from ._errors import FormatLimitError, ModelFileError, SerializableError, docs_url
from ._inspect import MANIFEST_H5, FileContents

if TYPE_CHECKING:
    from ._files import LoadOptions

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
    registered = _registry.registered_name(type(model))
    if registered:
        metadata["model_config"]["class_name"] = registered
    notes = _manifest.manifest(model, metadata)
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


def load_open(handle: h5py.File, contents: FileContents, options: LoadOptions) -> Any:
    """Load an `.h5` model written by this module or by plain Keras 3.

    `handle` and `contents` come from `_inspect.opened`, which has read the
    metadata; `contents.model_config` is consumed (Keras's loader edits it).
    """
    path = contents.path
    model_config = contents.model_config
    objects = {**_operation_classes(model_config), **(options.custom_objects or {})}
    unfilled = _fastbuild.Unfilled()
    # Files with an integrity record must have a checksum on every dataset.
    required = _guard.INTEGRITY_MARKER in contents.notes
    # Safe unless the user passed safe_mode=False or turned it off for the
    # process, as Keras's own `.keras` loader honours
    # `keras.config.enable_unsafe_deserialization()`.
    safe = options.safe_mode and _keras_compat.process_safe_mode()
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
    if options.compile and training is not None:
        compiled = _compile.compile_from_training(model, training, objects)
        if compiled and options.optimizer_state and "optimizer_weights" in handle:
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
    unfilled: _fastbuild.Unfilled,
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


def _text(value: Any) -> Any:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _operation_classes(config: Any) -> dict[str, Any]:
    """Keras ops saved as layers, e.g. `NotEqual` from a mask (mask-ops-in-h5).

    Legacy `.h5` records them by bare class name, which the legacy loader
    looks up among layers only; they are Keras's own classes in `keras.ops`.
    """
    found: dict[str, Any] = {}
    for class_name in _configwalk.class_names(config):
        if _registry.is_keras_class_name(class_name) or class_name in found:
            continue
        cls = _keras_compat.operation_class(class_name)
        if cls is not None:
            found[class_name] = cls
    return found


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
    group: h5py.Group,
    model: keras.Model,
    unfilled: _fastbuild.Unfilled,
    required: bool = False,
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
    unfilled: _fastbuild.Unfilled,
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
    unfilled = _fastbuild.Unfilled()
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
