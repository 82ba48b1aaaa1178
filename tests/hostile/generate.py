"""A corpus of hostile model files, made at test time from small good ones.

`cases()` lists every `Case`: a name, the file's suffix, a `make(base, dest)`
that writes the file, and what loading it must give. `Base` holds the good
files the cases start from (`save_model` and plain Keras, `.keras` and `.h5`),
written once per session.

Families: code-execution attempts (the Enum tag pointed at lazy modules, at a
marker module on `sys.path`, at `signal`, `subprocess`, `os`, `builtins`; the
library's own tags misused), HDF5 links and external or virtual storage,
tampering with metadata and weights in both formats, truncations, memory and
recursion bombs, zip tricks, wrong types in every metadata field, and paths
that are not regular files (FIFOs, devices, sockets, directories).

A marker module (`MARKER_MODULES`) written next to the files records its own
import in `MARKER`: no case may ever create it.
"""

from __future__ import annotations

import io
import json
import os
import socket
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from serializable import ConfigDecodeError, MissingClassError, ModelFileError

MARKER = "MARKER"
# Modules a hostile file may name; each writes MARKER when imported.
MARKER_MODULES = ("sa_marker_mod", "tf2onnx", "grain", "sa_evil_enum")
MARKER_SOURCE = (
    "import pathlib\n"
    "pathlib.Path(__file__).with_name('MARKER').write_text(__name__)\n"
    "import enum\n"
    "class Mode(enum.Enum):\n"
    "    FAST = 1\n"
    "class Evil:\n"
    "    pass\n"
)

# Stages: "read" files fail as soon as their metadata is read (inspect too);
# "load" files pass inspect (which reads metadata only) and fail when the
# model is built or its weights read; "any": truncations, which fail at one
# stage or the other depending on where the cut falls.
READ, LOAD, ANY = "read", "load", "any"


@dataclass(frozen=True)
class Case:
    name: str
    suffix: str  # ".keras" or ".h5"
    make: Callable[[Base, Path], None]
    stage: str
    error: type[Exception] = ModelFileError
    # A fragment the error message must hold, beyond the file's path.
    says: str = ""


@dataclass
class Base:
    """Good files (bytes) by (writer, format), and the directory for scratch."""

    files: dict[tuple[str, str], bytes]
    scratch: Path


def write_markers(directory: Path) -> None:
    for module in MARKER_MODULES:
        (directory / f"{module}.py").write_text(MARKER_SOURCE)


# ---------------------------------------------------------------------------
# Helpers that edit files
# ---------------------------------------------------------------------------


def rezip(
    data: bytes,
    dest: Path,
    replace: dict[str, bytes] | None = None,
    drop: tuple[str, ...] = (),
    add: dict[str, bytes] | None = None,
    comment: bytes | None = None,
    resign: bool = False,
) -> None:
    """Copy a .keras zip with members replaced, dropped or added. The archive
    comment (save_model's manifest and record) is kept unless `comment` is
    given; with `resign`, the record is computed again for the new members,
    as an attacker who knows the format would."""
    replace = replace or {}
    with zipfile.ZipFile(io.BytesIO(data)) as source:
        old_comment = source.comment
        with zipfile.ZipFile(dest, "w") as target:
            for info in source.infolist():
                if info.filename in drop:
                    continue
                target.writestr(
                    info, replace.get(info.filename, source.read(info.filename))
                )
            for name, contents in (add or {}).items():
                target.writestr(name, contents)
            target.comment = old_comment if comment is None else comment
    if resign:
        resign_keras(dest)


def resign_keras(path: Path) -> None:
    try:
        from serializable._guard import INTEGRITY_KERAS, keras_record
    except ImportError:  # a version without integrity records
        return

    with zipfile.ZipFile(path, "a") as archive:
        if not archive.comment:
            return
        comment = json.loads(archive.comment)
        manifest = comment["serializable.json"]
        comment[INTEGRITY_KERAS] = keras_record(archive, manifest)
        archive.comment = json.dumps(comment).encode()


def resign_h5(handle: h5py.File) -> None:
    try:
        from serializable._guard import INTEGRITY_H5, h5_record
    except ImportError:  # a version without integrity records
        return

    if INTEGRITY_H5 in handle.attrs:
        handle.attrs[INTEGRITY_H5] = h5_record(handle)


def member(data: bytes, name: str) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.read(name)


def edit_h5(
    data: bytes, dest: Path, edit: Callable[[h5py.File], None], resign: bool
) -> None:
    dest.write_bytes(data)
    with h5py.File(dest, "r+") as handle:
        edit(handle)
        if resign:
            resign_h5(handle)


def edit_weights_member(
    base: Base,
    writer: str,
    dest: Path,
    edit: Callable[[h5py.File], None],
    resign: bool = True,
) -> None:
    """Edit the model.weights.h5 inside a .keras archive."""
    data = base.files[writer, "keras"]
    scratch = dest.with_name(dest.name + ".weights.h5")
    scratch.write_bytes(member(data, "model.weights.h5"))
    with h5py.File(scratch, "r+") as handle:
        edit(handle)
    weights = scratch.read_bytes()
    scratch.unlink()
    rezip(data, dest, replace={"model.weights.h5": weights}, resign=resign)


def knob(config: dict[str, Any]) -> dict[str, Any]:
    """The config of the layer named "knob" (both config styles)."""
    for layer in config["config"]["layers"]:
        if layer["config"].get("name") == "knob":
            return layer["config"]
    raise AssertionError("no knob layer")


def with_value(value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(config: dict[str, Any]) -> None:
        knob(config)["value"] = value  # only serialized, never changed

    return edit


def edit_config(
    fmt: str, edit: Callable[[dict[str, Any]], None], resign: bool = True
) -> Callable[[Base, Path], None]:
    """Edit the model config of save_model's file, signing it again (so the
    codec, not the integrity check, meets the value)."""

    def make(base: Base, dest: Path) -> None:
        data = base.files["save_model", fmt]
        if fmt == "keras":
            config = json.loads(member(data, "config.json"))
            edit(config)
            rezip(
                data,
                dest,
                replace={"config.json": json.dumps(config).encode()},
                resign=resign,
            )
        else:

            def change(handle: h5py.File) -> None:
                config = json.loads(handle.attrs["model_config"])
                edit(config)
                handle.attrs["model_config"] = json.dumps(config).encode()

            edit_h5(data, dest, change, resign)

    return make


def nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


def external_file(dest: Path, shape: tuple[int, ...] = (4, 3)) -> Path:
    """An HDF5 file next to `dest` holding a dataset "secret" of `shape`."""
    other = dest.with_name(dest.stem + "-other.h5")
    with h5py.File(other, "w") as handle:
        handle["secret"] = np.full(shape, 7.0, dtype="float32")
        handle["group/secret"] = np.full(shape, 7.0, dtype="float32")
    return other


def secret_file(dest: Path, nbytes: int) -> Path:
    secret = dest.with_name(dest.stem + "-secret.bin")
    secret.write_bytes(bytes(range(256)) * (nbytes // 256 + 1))
    return secret


# ---------------------------------------------------------------------------
# HDF5 storage tricks, applied to a kernel dataset in either file
# ---------------------------------------------------------------------------


def h5_kernel(handle: h5py.File) -> tuple[h5py.Group, str]:
    """The group and name of the first Dense kernel."""
    found: list[tuple[h5py.Group, str]] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset) and obj.shape == (4, 3) and not found:
            parent, _, leaf = name.rpartition("/")
            found.append((handle[parent] if parent else handle, leaf))

    handle.visititems(visit)
    assert found, "no (4, 3) kernel"
    return found[0]


def trick(kind: str, dest: Path) -> Callable[[h5py.File], None]:
    def apply(handle: h5py.File) -> None:
        group, name = h5_kernel(handle)
        attrs = dict(group[name].attrs)
        del group[name]
        if kind == "external_link":
            other = external_file(dest)
            group[name] = h5py.ExternalLink(str(other), "/secret")
        elif kind == "external_link_group":
            other = external_file(dest)
            handle["stolen"] = h5py.ExternalLink(str(other), "/group")
            group[name] = np.zeros((4, 3), "float32")
        elif kind == "soft_link":
            handle["elsewhere"] = np.full((4, 3), 7.0, "float32")
            group[name] = h5py.SoftLink("/elsewhere")
        elif kind == "soft_link_dangling":
            group[name] = h5py.SoftLink("/nowhere/at/all")
        elif kind == "external_storage":
            secret = secret_file(dest, 48)
            group.create_dataset(
                name, shape=(4, 3), dtype="float32", external=[(str(secret), 0, 48)]
            )
        elif kind == "external_passwd":
            group.create_dataset(
                name, shape=(4, 3), dtype="uint8", external=[("/etc/passwd", 0, 12)]
            )
        elif kind == "virtual":
            other = external_file(dest)
            layout = h5py.VirtualLayout(shape=(4, 3), dtype="float32")
            layout[:] = h5py.VirtualSource(str(other), "secret", shape=(4, 3))
            group.create_virtual_dataset(name, layout)
        elif kind == "virtual_missing":
            layout = h5py.VirtualLayout(shape=(4, 3), dtype="float32")
            missing = str(dest.with_name("missing-source.h5"))
            layout[:] = h5py.VirtualSource(missing, "secret", shape=(4, 3))
            group.create_virtual_dataset(name, layout, fillvalue=0)
        elif kind == "shape_bomb":
            group.create_dataset(
                name,
                shape=(1 << 16, 1 << 16),
                dtype="float32",
                chunks=(256, 256),
                compression="gzip",
            )
        elif kind == "cycle":
            group[name] = np.zeros((4, 3), "float32")
            group["loop"] = handle  # a hard link back to the root
        else:
            raise AssertionError(kind)
        if name in group and isinstance(group.get(name, getlink=True), h5py.HardLink):
            if isinstance(group[name], h5py.Dataset):
                for key, value in attrs.items():
                    group[name].attrs[key] = value

    return apply


H5_TRICKS = (
    "external_link",
    "external_link_group",
    "soft_link",
    "soft_link_dangling",
    "external_storage",
    "external_passwd",
    "virtual",
    "virtual_missing",
    "shape_bomb",
    "cycle",
)


def h5_trick(kind: str) -> Callable[[Base, Path], None]:
    def make(base: Base, dest: Path) -> None:
        edit_h5(base.files["save_model", "h5"], dest, trick(kind, dest), True)

    return make


def keras_trick(kind: str) -> Callable[[Base, Path], None]:
    def make(base: Base, dest: Path) -> None:
        edit_weights_member(base, "plain_keras", dest, trick(kind, dest))

    return make


# ---------------------------------------------------------------------------
# Code execution through values
# ---------------------------------------------------------------------------

# Values put in the knob layer's `value` argument, and the error each gives.
EVIL_VALUES: dict[str, tuple[Any, type[Exception]]] = {
    "enum_lazy_tf2onnx": (
        {
            "__serializable__": "enum",
            "enum": "keras.src.utils.module_utils:tf2onnx.Mode",
            "member": "FAST",
        },
        ConfigDecodeError,
    ),
    "enum_lazy_grain": (
        {
            "__serializable__": "enum",
            "enum": "keras.src.utils.module_utils:grain.Mode",
            "member": "FAST",
        },
        ConfigDecodeError,
    ),
    "enum_lazy_scipy": (
        {
            "__serializable__": "enum",
            "enum": "keras.src.utils.module_utils:scipy.Mode",
            "member": "FAST",
        },
        ConfigDecodeError,
    ),
    "enum_marker_module": (
        {"__serializable__": "enum", "enum": "sa_marker_mod:Mode", "member": "FAST"},
        ConfigDecodeError,
    ),
    "enum_marker_registered_style": (
        {"__serializable__": "enum", "enum": "sa_evil_enum>Mode", "member": "FAST"},
        ConfigDecodeError,
    ),
    "enum_signal": (
        {"__serializable__": "enum", "enum": "signal:Signals", "member": "SIGKILL"},
        ConfigDecodeError,
    ),
    "enum_subprocess": (
        {"__serializable__": "enum", "enum": "subprocess:Popen", "member": "x"},
        ConfigDecodeError,
    ),
    "enum_os_system": (
        {"__serializable__": "enum", "enum": "os:system", "value": "true"},
        ConfigDecodeError,
    ),
    "enum_builtins_eval": (
        {"__serializable__": "enum", "enum": "builtins:eval", "member": "x"},
        ConfigDecodeError,
    ),
    "enum_registered_layer": (
        {"__serializable__": "enum", "enum": "hostile>Knob", "member": "x"},
        ConfigDecodeError,
    ),
    "enum_name_not_str": (
        {"__serializable__": "enum", "enum": ["signal", "Signals"], "member": "x"},
        ConfigDecodeError,
    ),
    "enum_member_not_str": (
        {"__serializable__": "enum", "enum": "hostile>Mode", "member": ["FAST"]},
        ConfigDecodeError,
    ),
    "keras_marker_class": (
        {
            "__serializable__": "keras",
            "config": {
                "module": "sa_marker_mod",
                "class_name": "Evil",
                "config": {},
                "registered_name": "Evil",
            },
        },
        MissingClassError,
    ),
    "keras_lazy_module": (
        {
            "__serializable__": "keras",
            "config": {
                "module": "keras.src.utils.module_utils",
                "class_name": "tf2onnx",
                "config": {},
                "registered_name": None,
            },
        },
        ModelFileError,
    ),
    "keras_subprocess_function": (
        {
            "__serializable__": "keras",
            "config": {
                "module": "subprocess",
                "class_name": "function",
                "config": "subprocess>Popen",
                "registered_name": "function",
            },
        },
        MissingClassError,
    ),
    "keras_lambda": (
        {
            "__serializable__": "keras",
            "config": {
                "module": "keras.layers",
                "class_name": "Lambda",
                "config": {
                    "function": {
                        "class_name": "__lambda__",
                        "config": {"code": "YQ==", "defaults": None, "closure": None},
                    }
                },
                "registered_name": None,
            },
        },
        ModelFileError,
    ),
    "keras_config_not_dict": (
        {"__serializable__": "keras", "config": 12},
        ConfigDecodeError,
    ),
    "tag_unknown_pickle": (
        {"__serializable__": "pickle", "data": "gASVAAAA"},
        ConfigDecodeError,
    ),
    "tag_tuple_items_str": (
        {"__serializable__": "tuple", "items": "abc"},
        ConfigDecodeError,
    ),
    "tag_dict_items_not_pairs": (
        {"__serializable__": "dict", "items": [[1, 2, 3]]},
        ConfigDecodeError,
    ),
    "tag_dict_unhashable_key": (
        {"__serializable__": "dict", "items": [[{"a": 1}, 1]]},
        ConfigDecodeError,
    ),
    "ndarray_object_dtype": (
        {"__serializable__": "ndarray", "dtype": "O", "shape": [1], "data": [1]},
        ConfigDecodeError,
    ),
    "ndarray_subarray_bomb": (
        {
            "__serializable__": "ndarray",
            "dtype": "(16000,16000)f8",
            "shape": [1],
            "data": [0],
        },
        ConfigDecodeError,
    ),
    "ndarray_shape_bomb_data": (
        {
            "__serializable__": "ndarray",
            "dtype": "float64",
            "shape": [16000, 16000],
            "data": [1.0],
        },
        ConfigDecodeError,
    ),
    "ndarray_shape_bomb_base64": (
        {
            "__serializable__": "ndarray",
            "dtype": "float64",
            "shape": [100000000],
            "base64": "AAAAAAAAAAA=",
        },
        ConfigDecodeError,
    ),
    "ndarray_negative_shape": (
        {"__serializable__": "ndarray", "dtype": "int32", "shape": [-1], "data": []},
        ConfigDecodeError,
    ),
    "ndarray_datetime": (
        {"__serializable__": "ndarray", "dtype": "M8[s]", "shape": [1], "data": [0]},
        ConfigDecodeError,
    ),
    "ndarray_void": (
        {"__serializable__": "ndarray", "dtype": "V8", "shape": [1], "data": [0]},
        ConfigDecodeError,
    ),
    "ndarray_bad_base64": (
        {
            "__serializable__": "ndarray",
            "dtype": "uint8",
            "shape": [3],
            "base64": "!!!!",
        },
        ConfigDecodeError,
    ),
    "ndarray_shape_not_list": (
        {"__serializable__": "ndarray", "dtype": "int8", "shape": 5, "data": [1]},
        ConfigDecodeError,
    ),
    "numpy_scalar_bytes_bomb": (
        {
            "__serializable__": "numpy_scalar",
            "dtype": "S2000000000",
            "shape": [],
            "data": 0,
        },
        ConfigDecodeError,
    ),
    "numpy_scalar_str_bomb": (
        {
            "__serializable__": "numpy_scalar",
            "dtype": "U500000000",
            "shape": [],
            "data": "a",
        },
        ConfigDecodeError,
    ),
    "numpy_scalar_with_shape": (
        {
            "__serializable__": "numpy_scalar",
            "dtype": "int8",
            "shape": [2],
            "data": [1, 2],
        },
        ConfigDecodeError,
    ),
}


def evil_cases() -> list[Case]:
    out = []
    for fmt, suffix in (("keras", ".keras"), ("h5", ".h5")):
        for name, (value, error) in EVIL_VALUES.items():
            out.append(
                Case(
                    f"code-{name}-{fmt}",
                    suffix,
                    edit_config(fmt, with_value(value)),
                    LOAD,
                    error,
                )
            )

        # A custom class whose module is a marker module, at the top level.
        def top_class(config: dict[str, Any]) -> None:
            config["class_name"] = "sa_marker_mod>Evil"
            config["registered_name"] = "sa_marker_mod>Evil"
            config["module"] = "sa_marker_mod"

        out.append(
            Case(
                f"code-top-class-{fmt}",
                suffix,
                edit_config(fmt, top_class),
                LOAD,
                MissingClassError,
            )
        )
    return out


# ---------------------------------------------------------------------------
# Tampering with save_model's files
# ---------------------------------------------------------------------------


def flip_bytes(data: bytes, needle: bytes, replacement: bytes) -> bytes:
    assert data.count(needle) >= 1, needle
    return data.replace(needle, replacement, 1)


def tamper_h5(edit: Callable[[h5py.File], None]) -> Callable[[Base, Path], None]:
    def make(base: Base, dest: Path) -> None:
        edit_h5(base.files["save_model", "h5"], dest, edit, resign=False)

    return make


def _config_number(handle: h5py.File) -> None:
    config = json.loads(handle.attrs["model_config"])
    knob(config)["scale"] = 0.4  # was 0.5
    handle.attrs["model_config"] = json.dumps(config).encode()


def _swap_index(handle: h5py.File) -> None:
    group = handle["model_weights/norm"]
    index = np.asarray(group.attrs["serializable_weight_index"])
    index[[0, 1]] = index[[1, 0]]
    group.attrs["serializable_weight_index"] = index


def _reorder_layer_names(handle: h5py.File) -> None:
    names = _names(handle["model_weights"].attrs["layer_names"])
    handle["model_weights"].attrs["layer_names"] = names[::-1]


def _reorder_weight_names(handle: h5py.File) -> None:
    group = handle["model_weights/norm"]
    names = _names(group.attrs["weight_names"])
    names[[0, 1]] = names[[1, 0]]
    group.attrs["weight_names"] = names


def _names(value: Any) -> np.ndarray:
    return np.array(
        [n.encode() if isinstance(n, str) else bytes(n) for n in value], dtype="S"
    )


def _first_dataset(group: h5py.Group) -> h5py.Dataset:
    found: list[h5py.Dataset] = []
    group.visititems(
        lambda n, o: (
            found.append(o) if isinstance(o, h5py.Dataset) and o.size > 1 else None
        )
    )
    return found[0]


def _flip_optimizer(handle: h5py.File) -> None:
    dataset = _first_dataset(handle["optimizer_weights"])
    value = np.asarray(dataset)
    raw = value.reshape(-1).view(np.uint8).copy()
    raw[0] ^= 1
    dataset[...] = raw.view(value.dtype).reshape(value.shape)


def _flip_kernel(handle: h5py.File) -> None:
    group, name = h5_kernel(handle)
    value = np.asarray(group[name])
    raw = value.reshape(-1).view(np.uint8).copy()
    raw[5] ^= 0x10
    group[name][...] = raw.view(value.dtype).reshape(value.shape)


def _drop_checksum(handle: h5py.File) -> None:
    group, name = h5_kernel(handle)
    del group[name].attrs["serializable_checksum"]


def _drop_checksum_resigned(handle: h5py.File) -> None:
    _drop_checksum(handle)
    resign_h5(handle)


def _drop_optimizer_checksum_resigned(handle: h5py.File) -> None:
    del _first_dataset(handle["optimizer_weights"]).attrs["serializable_checksum"]
    resign_h5(handle)


def _drop_record(handle: h5py.File) -> None:
    del handle.attrs["serializable_integrity"]


def _drop_record_and_edit(handle: h5py.File) -> None:
    _config_number(handle)
    del handle.attrs["serializable_integrity"]


def _set_attr(key: str, value: Any) -> Callable[[h5py.File], None]:
    def edit(handle: h5py.File) -> None:
        handle.attrs[key] = value

    return edit


def _edit_manifest(handle: h5py.File) -> None:
    manifest = json.loads(handle.attrs["serializable_manifest"])
    manifest["__outputs__"] = "tuple"
    handle.attrs["serializable_manifest"] = json.dumps(manifest).encode()


def _edit_training(handle: h5py.File) -> None:
    training = json.loads(handle.attrs["training_config"])
    training["loss"] = "mae"
    handle.attrs["training_config"] = json.dumps(training).encode()


def _rename_dataset(handle: h5py.File) -> None:
    group, name = h5_kernel(handle)
    group.move(name, name + "_moved")


# What the error must name, for some of the tampering cases.
SAYS = {
    "tamper-h5-config-number": "the file's metadata",
    "tamper-h5-weight-index-swapped": "the file's metadata",
    "tamper-h5-layer-names-reordered": "the file's metadata",
    "tamper-h5-optimizer-slot-bit": "optimizer variable",
    "tamper-h5-kernel-bit": "of layer 'hidden' is damaged",
    "tamper-h5-checksum-deleted-resigned": "no checksum attribute",
    "tamper-h5-record-deleted": "the integrity record is damaged",
    "tamper-keras-config-number": "archive member 'config.json' is damaged",
    "tamper-keras-weights-gamma-beta-swapped": "'model.weights.h5' is damaged",
    "tamper-keras-manifest-edited": "the manifest or the integrity record",
    "tamper-keras-record-deleted": "the integrity record is damaged",
    "tamper-keras-extra-member": "'assets/extra.txt'",
}

H5_TAMPERING: dict[str, tuple[Callable[[h5py.File], None], str]] = {
    "config-number": (_config_number, READ),
    "weight-index-swapped": (_swap_index, READ),
    "layer-names-reordered": (_reorder_layer_names, READ),
    "weight-names-reordered": (_reorder_weight_names, READ),
    "optimizer-slot-bit": (_flip_optimizer, LOAD),
    "kernel-bit": (_flip_kernel, LOAD),
    "checksum-deleted": (_drop_checksum, READ),
    "checksum-deleted-resigned": (_drop_checksum_resigned, LOAD),
    "optimizer-checksum-deleted-resigned": (_drop_optimizer_checksum_resigned, LOAD),
    "record-deleted": (_drop_record, READ),
    "record-deleted-config-edited": (_drop_record_and_edit, READ),
    "record-not-json": (_set_attr("serializable_integrity", b"{not json"), READ),
    "record-wrong-digest": (
        _set_attr("serializable_integrity", b'{"version": 1, "sha256": "00"}'),
        READ,
    ),
    "record-int": (_set_attr("serializable_integrity", 7), READ),
    "manifest-edited": (_edit_manifest, READ),
    "training-config-edited": (_edit_training, READ),
    "keras-version-edited": (_set_attr("keras_version", b"3.0.0"), READ),
    "backend-edited": (_set_attr("backend", b"jax"), READ),
    "dataset-renamed": (_rename_dataset, READ),
}


def _keras_config_flip(base: Base, dest: Path) -> None:
    data = base.files["save_model", "keras"]
    config = member(data, "config.json")
    rezip(
        data,
        dest,
        replace={"config.json": flip_bytes(config, b'"scale": 0.5', b'"scale": 0.4')},
    )


def _keras_metadata_flip(base: Base, dest: Path) -> None:
    data = base.files["save_model", "keras"]
    metadata = member(data, "metadata.json")
    rezip(data, dest, replace={"metadata.json": metadata.replace(b"3.", b"4.", 1)})


def _keras_weights_swap(base: Base, dest: Path) -> None:
    """BatchNormalization gamma and beta swapped inside the weights member."""

    def swap(handle: h5py.File) -> None:
        group = handle["layers/batch_normalization/vars"]
        group.move("0", "tmp")
        group.move("1", "0")
        group.move("tmp", "1")

    data = base.files["save_model", "keras"]
    scratch = dest.with_name("swap.weights.h5")
    scratch.write_bytes(member(data, "model.weights.h5"))
    with h5py.File(scratch, "r+") as handle:
        swap(handle)
    rezip(data, dest, replace={"model.weights.h5": scratch.read_bytes()})
    scratch.unlink()


def _raw_weight_flip(data: bytes, dest: Path) -> None:
    """A bit flipped in a stored kernel value, the zip's CRC left as it was."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        with archive.open("model.weights.h5") as weights, h5py.File(weights) as h:
            group, name = h5_kernel(h)
            kernel = np.asarray(group[name]).tobytes()
    flipped = bytearray(data)
    offset = flipped.find(kernel)
    assert offset > 0
    flipped[offset + 5] ^= 0x01
    dest.write_bytes(bytes(flipped))


def _keras_raw_weight_flip(base: Base, dest: Path) -> None:
    _raw_weight_flip(base.files["save_model", "keras"], dest)


def _keras_comment(
    edit: Callable[[dict[str, Any]], None],
) -> Callable[[Base, Path], None]:
    def make(base: Base, dest: Path) -> None:
        data = base.files["save_model", "keras"]
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            comment = json.loads(archive.comment)
        edit(comment)
        rezip(data, dest, comment=json.dumps(comment).encode())

    return make


def _manifest_edit(comment: dict[str, Any]) -> None:
    comment["serializable.json"]["__outputs__"] = "tuple"


def _record_drop(comment: dict[str, Any]) -> None:
    del comment["serializable.integrity"]


def _record_crc(comment: dict[str, Any]) -> None:
    comment["serializable.integrity"]["members"]["config.json"][1] ^= 1


def _record_form(comment: dict[str, Any]) -> None:
    comment["serializable.integrity"] = [1, 2]


def _keras_extra_member(base: Base, dest: Path) -> None:
    rezip(base.files["save_model", "keras"], dest, add={"assets/extra.txt": b"x"})


def _keras_dropped_weights(base: Base, dest: Path) -> None:
    rezip(base.files["save_model", "keras"], dest, drop=("model.weights.h5",))


KERAS_TAMPERING: dict[str, tuple[Callable[[Base, Path], None], str]] = {
    "config-number": (_keras_config_flip, READ),
    "metadata-edited": (_keras_metadata_flip, READ),
    "weights-gamma-beta-swapped": (_keras_weights_swap, READ),
    # Caught at the latest when the member is read through; for a small file,
    # when inspect reads its HDF5 metadata, which ends at the member's end.
    "weights-raw-bit": (_keras_raw_weight_flip, ANY),
    "manifest-edited": (_keras_comment(_manifest_edit), READ),
    "record-deleted": (_keras_comment(_record_drop), READ),
    "record-crc-edited": (_keras_comment(_record_crc), READ),
    "record-wrong-form": (_keras_comment(_record_form), READ),
    "extra-member": (_keras_extra_member, READ),
    "weights-member-dropped": (_keras_dropped_weights, READ),
}


def tampering_cases() -> list[Case]:
    out = [
        Case(
            f"tamper-h5-{name}",
            ".h5",
            tamper_h5(edit),
            stage,
            ModelFileError,
            SAYS.get(f"tamper-h5-{name}", ""),
        )
        for name, (edit, stage) in H5_TAMPERING.items()
    ]
    out += [
        Case(
            f"tamper-keras-{name}",
            ".keras",
            make,
            stage,
            ModelFileError,
            SAYS.get(f"tamper-keras-{name}", ""),
        )
        for name, (make, stage) in KERAS_TAMPERING.items()
    ]
    # Plain Keras .keras: the zip's own CRC-32 still catches a flipped bit.
    out.append(Case("tamper-plain-keras-raw-bit", ".keras", _plain_raw_flip, ANY))
    return out


def _plain_raw_flip(base: Base, dest: Path) -> None:
    _raw_weight_flip(base.files["plain_keras", "keras"], dest)


# ---------------------------------------------------------------------------
# Storage tricks, truncations, bombs, zip tricks
# ---------------------------------------------------------------------------


def storage_cases() -> list[Case]:
    out = [Case(f"h5-{kind}", ".h5", h5_trick(kind), READ) for kind in H5_TRICKS]
    out += [
        Case(f"keras-weights-{kind}", ".keras", keras_trick(kind), READ)
        for kind in H5_TRICKS
    ]
    return out


def truncated(writer: str, fmt: str, fraction: float) -> Callable[[Base, Path], None]:
    def make(base: Base, dest: Path) -> None:
        data = base.files[writer, fmt]
        dest.write_bytes(data[: int(len(data) * fraction)])

    return make


def truncation_cases() -> list[Case]:
    out = []
    for writer in ("save_model", "plain_keras"):
        for fmt in ("keras", "h5"):
            for fraction in (0.01, 0.3, 0.6, 0.97):
                out.append(
                    Case(
                        f"truncated-{writer}-{fmt}-{int(fraction * 100)}",
                        f".{fmt}",
                        truncated(writer, fmt, fraction),
                        ANY,
                    )
                )
    return out


def _deflate_bomb(name: str, nbytes: int = 64 << 20) -> Callable[[Base, Path], None]:
    def make(base: Base, dest: Path) -> None:
        data = base.files["plain_keras", "keras"]
        with (
            zipfile.ZipFile(io.BytesIO(data)) as source,
            zipfile.ZipFile(
                dest, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1
            ) as target,
        ):
            for info in source.infolist():
                if info.filename == name:
                    continue
                target.writestr(info.filename, source.read(info.filename))
            with target.open(name, "w") as out:
                chunk = b" " * (1 << 20)
                for _ in range(nbytes >> 20):
                    out.write(chunk)

    return make


def _deep_keras(base: Base, dest: Path) -> None:
    data = base.files["plain_keras", "keras"]
    config = json.loads(member(data, "config.json"))
    config["config"]["deep"] = nested(950)
    rezip(data, dest, replace={"config.json": json.dumps(config).encode()})


def _deep_keras_3000(base: Base, dest: Path) -> None:
    data = base.files["plain_keras", "keras"]
    text = member(data, "config.json")
    deep = b"[" * 3000 + b"]" * 3000
    text = text.replace(b'{"module"', b'{"deep": ' + deep + b', "module"', 1)
    rezip(data, dest, replace={"config.json": text})


def _deep_h5(key: str) -> Callable[[Base, Path], None]:
    def make(base: Base, dest: Path) -> None:
        def edit(handle: h5py.File) -> None:
            value = json.loads(handle.attrs[key])
            value["deep"] = nested(950)
            handle.attrs[key] = json.dumps(value).encode()

        edit_h5(base.files["save_model", "h5"], dest, edit, resign=True)

    return make


def _deep_comment(base: Base, dest: Path) -> None:
    data = base.files["save_model", "keras"]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        comment = json.loads(archive.comment)
    comment["serializable.json"]["__deep__"] = nested(950)
    rezip(data, dest, comment=json.dumps(comment).encode())


def _deep_value(fmt: str) -> Callable[[Base, Path], None]:
    return edit_config(fmt, with_value(nested(400)))


def _big_value(fmt: str) -> Callable[[Base, Path], None]:
    # A list of 300 levels of single-item tuples: deep in the codec's tags.
    value: Any = 1
    for _ in range(300):
        value = {"__serializable__": "tuple", "items": [value]}
    return edit_config(fmt, with_value(value))


def bomb_cases() -> list[Case]:
    return [
        Case("bomb-config-deflate", ".keras", _deflate_bomb("config.json"), READ),
        Case("bomb-metadata-deflate", ".keras", _deflate_bomb("metadata.json"), READ),
        Case("bomb-weights-deflate", ".keras", _deflate_bomb("model.weights.h5"), READ),
        Case("bomb-config-depth-950", ".keras", _deep_keras, READ),
        Case("bomb-config-depth-3000", ".keras", _deep_keras_3000, READ),
        Case("bomb-h5-model-config-depth", ".h5", _deep_h5("model_config"), READ),
        Case("bomb-h5-training-config-depth", ".h5", _deep_h5("training_config"), READ),
        Case("bomb-h5-manifest-depth", ".h5", _deep_h5("serializable_manifest"), READ),
        Case("bomb-comment-depth", ".keras", _deep_comment, READ),
        Case("bomb-value-depth-keras", ".keras", _deep_value("keras"), READ),
        Case("bomb-value-depth-h5", ".h5", _deep_value("h5"), READ),
        Case("bomb-tuple-depth-keras", ".keras", _big_value("keras"), READ),
        Case("bomb-tuple-depth-h5", ".h5", _big_value("h5"), READ),
    ]


def _zip_duplicate(base: Base, dest: Path) -> None:
    data = base.files["plain_keras", "keras"]
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(dest, "w") as target,
    ):
        for info in source.infolist():
            target.writestr(info.filename, source.read(info.filename))
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            target.writestr("config.json", b'{"class_name": "Evil", "config": {}}')


def _zip_traversal(name: str) -> Callable[[Base, Path], None]:
    def make(base: Base, dest: Path) -> None:
        rezip(base.files["plain_keras", "keras"], dest, add={name: b"pwned"})

    return make


def _zip_encrypted(base: Base, dest: Path) -> None:
    data = bytearray(base.files["plain_keras", "keras"])
    # Set the "encrypted" flag of every entry, local and central.
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (start := data.find(signature, start)) >= 0:
            data[start + offset] |= 0x01
            start += 4
    dest.write_bytes(bytes(data))


def _zip_method(base: Base, dest: Path) -> None:
    data = bytearray(base.files["plain_keras", "keras"])
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        start = 0
        while (start := data.find(signature, start)) >= 0:
            data[start + offset] = 99
            start += 4
    dest.write_bytes(bytes(data))


def _zip_lying_size(base: Base, dest: Path) -> None:
    """The central directory declares config.json as 3 GiB, stored 2 KiB."""
    data = bytearray(base.files["plain_keras", "keras"])
    start = 0
    while (start := data.find(b"PK\x01\x02", start)) >= 0:
        name_length = int.from_bytes(data[start + 28 : start + 30], "little")
        name = bytes(data[start + 46 : start + 46 + name_length])
        if name == b"config.json":
            data[start + 24 : start + 28] = (3 << 30).to_bytes(4, "little")
        start += 4
    dest.write_bytes(bytes(data))


def zip_cases() -> list[Case]:
    return [
        Case("zip-duplicate-member", ".keras", _zip_duplicate, READ),
        Case("zip-traversal-dotdot", ".keras", _zip_traversal("../evil.txt"), READ),
        Case("zip-traversal-absolute", ".keras", _zip_traversal("/tmp/evil.txt"), READ),
        Case(
            "zip-traversal-assets",
            ".keras",
            _zip_traversal("assets/../../evil.txt"),
            READ,
        ),
        Case("zip-encrypted", ".keras", _zip_encrypted, READ),
        Case("zip-unknown-method", ".keras", _zip_method, READ),
        Case("zip-lying-size", ".keras", _zip_lying_size, READ),
    ]


# ---------------------------------------------------------------------------
# Wrong types in metadata fields
# ---------------------------------------------------------------------------


def _keras_member_json(name: str, value: Any, writer: str = "plain_keras"):
    def make(base: Base, dest: Path) -> None:
        rezip(
            base.files[writer, "keras"],
            dest,
            replace={name: json.dumps(value).encode()},
            resign=True,
        )

    return make


def _keras_metadata_field(key: str, value: Any):
    def make(base: Base, dest: Path) -> None:
        data = base.files["save_model", "keras"]
        metadata = json.loads(member(data, "metadata.json"))
        metadata[key] = value
        rezip(
            data,
            dest,
            replace={"metadata.json": json.dumps(metadata).encode()},
            resign=True,
        )

    return make


def _keras_config_field(key: str, value: Any):
    def make(base: Base, dest: Path) -> None:
        data = base.files["save_model", "keras"]
        config = json.loads(member(data, "config.json"))
        config[key] = value
        rezip(
            data,
            dest,
            replace={"config.json": json.dumps(config).encode()},
            resign=True,
        )

    return make


def _keras_manifest_field(key: str, value: Any):
    def make(base: Base, dest: Path) -> None:
        data = base.files["save_model", "keras"]
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            comment = json.loads(archive.comment)
        comment["serializable.json"][key] = value
        rezip(data, dest, comment=json.dumps(comment).encode(), resign=True)

    return make


def _keras_manifest_whole(value: Any):
    def make(base: Base, dest: Path) -> None:
        data = base.files["save_model", "keras"]
        comment = {"serializable.json": value}
        rezip(data, dest, comment=json.dumps(comment).encode())

    return make


def _h5_attr(key: str, value: Any, group: str = "/"):
    def make(base: Base, dest: Path) -> None:
        def edit(handle: h5py.File) -> None:
            handle[group].attrs[key] = value

        edit_h5(base.files["save_model", "h5"], dest, edit, resign=True)

    return make


def _h5_manifest_field(key: str, value: Any):
    def make(base: Base, dest: Path) -> None:
        def edit(handle: h5py.File) -> None:
            manifest = json.loads(handle.attrs["serializable_manifest"])
            manifest[key] = value
            handle.attrs["serializable_manifest"] = json.dumps(manifest).encode()

        edit_h5(base.files["save_model", "h5"], dest, edit, resign=True)

    return make


def _h5_weight_index(value: Any):
    def make(base: Base, dest: Path) -> None:
        def edit(handle: h5py.File) -> None:
            handle["model_weights/norm"].attrs["serializable_weight_index"] = value

        edit_h5(base.files["save_model", "h5"], dest, edit, resign=True)

    return make


def _h5_delete_attr(group: str, key: str):
    def make(base: Base, dest: Path) -> None:
        def edit(handle: h5py.File) -> None:
            del handle[group].attrs[key]

        edit_h5(base.files["save_model", "h5"], dest, edit, resign=True)

    return make


def type_cases() -> list[Case]:
    keras_cases = {
        "metadata-list": (_keras_member_json("metadata.json", [1, 2]), READ),
        "metadata-string": (_keras_member_json("metadata.json", "x"), READ),
        "config-list": (_keras_member_json("config.json", [1]), READ),
        "config-no-class": (_keras_member_json("config.json", {"config": {}}), READ),
        "keras-version-list": (_keras_metadata_field("keras_version", [3, 1]), READ),
        "backend-dict": (_keras_metadata_field("backend", {"a": 1}), READ),
        "date-saved-int": (_keras_metadata_field("date_saved", 12), READ),
        "compile-config-list": (_keras_config_field("compile_config", [1]), READ),
        "layers-not-list": (
            _keras_config_field("config", {"layers": 5, "name": "x"}),
            LOAD,
        ),
        "config-config-string": (_keras_config_field("config", "oops"), LOAD),
        "manifest-list": (_keras_manifest_whole([1, 2]), READ),
        "manifest-string": (_keras_manifest_whole("x"), READ),
        "manifest-value-int": (_keras_manifest_field("hostile>Knob", 5), READ),
        "manifest-frozen-string": (_keras_manifest_field("__frozen__", "knob"), READ),
        "manifest-frozen-ints": (_keras_manifest_field("__frozen__", [1, 2]), READ),
        "manifest-backend-list": (_keras_manifest_field("__backend__", ["x"]), READ),
        "manifest-marker-string": (_keras_manifest_field("__integrity__", "yes"), READ),
        "manifest-top-int": (_keras_manifest_field("__top__", 3), READ),
    }
    h5_cases = {
        "model-config-int": (_h5_attr("model_config", 5), READ),
        "model-config-list": (_h5_attr("model_config", b"[1, 2]"), READ),
        "model-config-array": (_h5_attr("model_config", np.arange(3)), READ),
        "training-config-list": (_h5_attr("training_config", b"[1]"), READ),
        "training-config-int": (_h5_attr("training_config", 3), READ),
        "keras-version-array": (_h5_attr("keras_version", np.arange(3)), READ),
        "backend-int": (_h5_attr("backend", 3), READ),
        "manifest-list": (_h5_attr("serializable_manifest", b"[1]"), READ),
        "manifest-int-attr": (_h5_attr("serializable_manifest", 4), READ),
        "manifest-value-int": (_h5_manifest_field("hostile>Knob", 5), READ),
        "manifest-frozen-string": (_h5_manifest_field("__frozen__", "knob"), READ),
        "layer-names-int": (_h5_attr("layer_names", 5, "model_weights"), LOAD),
        "weight-names-missing": (
            _h5_delete_attr("model_weights/norm", "weight_names"),
            LOAD,
        ),
        "weight-index-floats": (_h5_weight_index(np.array([0.5, 1.5, 2.5, 3.5])), LOAD),
        "weight-index-out-of-range": (_h5_weight_index(np.array([0, 1, 2, 99])), LOAD),
        "weight-index-repeated": (_h5_weight_index(np.array([0, 0, 0, 0])), LOAD),
        "checksum-int": (_h5_checksum_value(5), LOAD),
        "checksum-unknown-kind": (_h5_checksum_value(b"zz99:00"), LOAD),
    }
    out = [Case(f"type-keras-{n}", ".keras", m, s) for n, (m, s) in keras_cases.items()]
    out += [Case(f"type-h5-{n}", ".h5", m, s) for n, (m, s) in h5_cases.items()]
    return out


def _h5_checksum_value(value: Any):
    def make(base: Base, dest: Path) -> None:
        def edit(handle: h5py.File) -> None:
            group, name = h5_kernel(handle)
            group[name].attrs["serializable_checksum"] = value

        edit_h5(base.files["save_model", "h5"], dest, edit, resign=True)

    return make


# ---------------------------------------------------------------------------
# Paths that are not regular files
# ---------------------------------------------------------------------------


def _fifo(base: Base, dest: Path) -> None:
    os.mkfifo(dest)


def _device(base: Base, dest: Path) -> None:
    dest.symlink_to("/dev/zero")


def _socket(base: Base, dest: Path) -> None:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(dest))
    server.close()


def _directory(base: Base, dest: Path) -> None:
    dest.mkdir()


def _dangling_symlink(base: Base, dest: Path) -> None:
    dest.symlink_to(dest.with_name("nothing-here.keras"))


def special_cases() -> list[Case]:
    out = []
    for suffix in (".keras", ".h5"):
        tag = suffix[1:]
        out += [
            Case(f"special-fifo-{tag}", suffix, _fifo, READ),
            Case(f"special-device-{tag}", suffix, _device, READ),
            Case(f"special-directory-{tag}", suffix, _directory, READ),
        ]
    out.append(Case("special-socket", ".keras", _socket, READ))
    out.append(Case("special-dangling-symlink", ".keras", _dangling_symlink, READ))
    return out


def cases() -> list[Case]:
    """Every hostile file of the corpus."""
    return [
        *evil_cases(),
        *storage_cases(),
        *tampering_cases(),
        *truncation_cases(),
        *bomb_cases(),
        *zip_cases(),
        *type_cases(),
        *special_cases(),
    ]
