"""Read what a model file holds without building the model or running its code.

Only JSON and HDF5 metadata are read: configs, versions, weight shapes. No
class named in the file is imported or instantiated, so inspecting a file from
a stranger is safe. Used by `load_model` (to list every missing class before
Keras trips over the first one) and by the `serializable inspect` command.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _guard
from ._errors import ModelFileError

ZIP_MAGIC = b"PK\x03\x04"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
MANIFEST_KERAS = "serializable.json"
MANIFEST_H5 = "serializable_manifest"


@dataclass(frozen=True)
class ClassRef:
    """A custom class or function a file needs, and whether it can be found here."""

    registered_name: str
    class_name: str
    module: str | None
    importable: bool

    def describe(self) -> str:
        where = f" from module {self.module}" if self.module else ""
        return f"{self.registered_name!r} ({self.class_name}{where})"


@dataclass
class FileContents:
    """The metadata of one model file."""

    path: Path
    format: str  # "keras" or "h5"
    size: int
    keras_version: str | None
    backend: str | None
    date_saved: str | None
    model_config: dict[str, Any]
    compile_config: dict[str, Any] | None
    weight_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    manifest: dict[str, str] = field(default_factory=dict)
    # keras-serializable's own notes about the model (keys "__top__",
    # "__outputs__"), present in files written by save_model.
    notes: dict[str, Any] = field(default_factory=dict)


SUFFIXES = {".keras": "keras", ".h5": "h5", ".hdf5": "h5"}


def format_for_suffix(path: Path, action: str, fix: str) -> str:
    """The format `path`'s suffix names ("keras" or "h5"), or a ValueError
    saying `Cannot {action} {path}` and ending with `fix`."""
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        message = (
            f"Cannot {action} {str(path)!r}: expected a path ending in .keras, .h5 "
            f"or .hdf5, which chooses the format. Received: suffix "
            f"{path.suffix or '(none)'!r}. {fix}"
        )
        raise ValueError(message)
    return fmt


def sniff_format(path: Path) -> str:
    """The real format of `path` from its bytes: "keras", "h5" or an error."""
    if path.is_dir():
        if (path / "saved_model.pb").exists():
            message = (
                f"Cannot load {str(path)!r}: expected a .keras or .h5 file. "
                "Received: a TensorFlow SavedModel directory (saved by Keras 2 or "
                "tf.saved_model), which Keras 3 cannot rebuild as a model. Fix: "
                "for inference on the TensorFlow backend use `layer = "
                f"keras.layers.TFSMLayer({str(path)!r}, "
                'call_endpoint="serving_default")`'
                "; to keep training, save the model to .keras with the Keras that "
                "wrote it."
            )
        else:
            message = (
                f"Cannot load {str(path)!r}: expected a .keras or .h5 file. "
                "Received: a directory. Pass the path of the model file inside it."
            )
        raise ModelFileError(message)
    if not path.exists():
        message = (
            f"Cannot load {str(path)!r}: expected an existing .keras or .h5 file. "
            "Received: a path that does not exist. Check the path."
        )
        raise ModelFileError(message)
    _guard.regular_file(path)  # a FIFO or a device is refused before it is opened
    with open(path, "rb") as handle:
        head = handle.read(8)
    if not head:
        message = (
            f"Cannot load {str(path)!r}: expected a .keras or .h5 file. Received: "
            "an empty file (0 bytes), probably from an interrupted save. Save the "
            "model again."
        )
        raise ModelFileError(message)
    if head.startswith(ZIP_MAGIC):
        return "keras"
    if head == HDF5_MAGIC:
        return "h5"
    message = (
        f"Cannot load {str(path)!r}: expected a .keras (zip) or .h5 (HDF5) file. "
        f"Received: a file starting with bytes {head!r}, which is neither. Check "
        "that this is a Keras model file and that it was copied completely."
    )
    raise ModelFileError(message)


def _corrupt(path: Path, fmt: str, detail: str) -> ModelFileError:
    message = (
        f"Cannot read {str(path)!r}: expected a complete .{fmt} model file. "
        f"Received: {detail}. The file is truncated or corrupted; save or copy "
        "it again."
    )
    return ModelFileError(message)


def read_file(path: str | os.PathLike[str], weight_shapes: bool = True) -> FileContents:
    """Read a model file's metadata; raise ModelFileError if it is unreadable.

    `weight_shapes=False` skips listing the weights (which in a `.keras` file
    means reading the whole weights member): loading does not need them.
    """
    with opened(path, weight_shapes) as (contents, _):
        return contents


@contextlib.contextmanager
def opened(
    path: str | os.PathLike[str], weight_shapes: bool = True
) -> Iterator[tuple[FileContents, Any]]:
    """`read_file`, keeping an `.h5` file open until the block ends.

    Yields the metadata and the open `h5py.File` it was read from, so that a
    loader reads the weights from the same handle instead of opening and
    parsing the file a second time; for `.keras` (which Keras opens itself)
    the handle is None.
    """
    path = Path(path)
    fmt = sniff_format(path)
    size = path.stat().st_size
    if fmt == "keras":
        yield _read_keras(path, size, weight_shapes), None
        return
    import h5py

    try:
        handle = h5py.File(path, "r")
    except Exception as err:  # h5py raises OSError variants for broken files
        raise _corrupt(path, "h5", f"{type(err).__name__}: {err}") from err
    with handle:
        yield _read_h5(handle, path, size, weight_shapes), handle


def _read_keras(path: Path, size: int, weight_shapes: bool) -> FileContents:
    try:
        with zipfile.ZipFile(path) as archive:
            _guard.check_all_members(archive, path)
            names = set(archive.namelist())
            missing = {"config.json", "metadata.json"} - names
            if missing:
                raise _corrupt(
                    path, "keras", f"a zip archive without {sorted(missing)}"
                )
            comment = _comment(path, archive.comment)
            _guard.keras_integrity(
                archive, path, comment, MANIFEST_KERAS, read_data=False
            )
            config = _guard.loads(
                path, _guard.read_member(archive, path, "config.json"), "config.json"
            )
            metadata = _guard.loads(
                path,
                _guard.read_member(archive, path, "metadata.json"),
                "metadata.json",
            )
            manifest = (
                _guard.loads(
                    path,
                    _guard.read_member(archive, path, MANIFEST_KERAS),
                    MANIFEST_KERAS,
                )
                if MANIFEST_KERAS in names
                else comment.get(MANIFEST_KERAS, {})
            )
            shapes: dict[str, tuple[int, ...]] = {}
            if "model.weights.h5" in names:
                shapes = _keras_weight_shapes(archive, path)
            if not weight_shapes:
                shapes = {}
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, json.JSONDecodeError, OSError, KeyError) as err:
        raise _corrupt(path, "keras", f"{type(err).__name__}: {err}") from err
    except Exception as err:  # zlib/CRC errors surface as several types
        raise _corrupt(path, "keras", f"{type(err).__name__}: {err}") from err
    if not isinstance(config, dict) or "class_name" not in config:
        raise _corrupt(path, "keras", "a config.json that holds no model config")
    if not isinstance(metadata, dict):
        raise _wrong_type(path, "metadata.json", "a JSON object", metadata)
    manifest = _check_manifest(path, manifest)
    compile_config = ("compile_config", config.get("compile_config"))
    return _contents(
        path, "keras", size, config, compile_config, metadata, shapes, manifest
    )


def _contents(
    path: Path,
    fmt: str,
    size: int,
    model_config: dict[str, Any],
    compile_config: tuple[str, Any],
    stamp: dict[str, Any],
    shapes: dict[str, tuple[int, ...]],
    manifest: dict[str, Any],
    *,
    backend_note: bool = True,
) -> FileContents:
    """What a reader found, its fields' types checked.

    `compile_config` is the field's name in the file and its value; `stamp`
    holds the "keras_version", "backend" and "date_saved" the file records;
    `backend_note` falls back on the manifest's note when it has no backend.
    """
    field_name, compiled = compile_config
    if compiled is not None and not isinstance(compiled, dict):
        raise _wrong_type(path, field_name, "a JSON object", compiled)
    version = _optional_text(path, "keras_version", stamp.get("keras_version"))
    backend = _optional_text(path, "backend", stamp.get("backend"))
    if backend_note:
        backend = backend or _optional_text(
            path, "__backend__", manifest.get("__backend__")
        )
    return FileContents(
        path=path,
        format=fmt,
        size=size,
        keras_version=version,
        backend=backend,
        date_saved=_optional_text(path, "date_saved", stamp.get("date_saved")),
        model_config=model_config,
        compile_config=compiled,
        weight_shapes=shapes,
        manifest={k: v for k, v in manifest.items() if not k.startswith("__")},
        notes={k: v for k, v in manifest.items() if k.startswith("__")},
    )


def _wrong_type(
    path: Path, field_name: str, expected: str, value: Any
) -> ModelFileError:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    message = (
        f"Cannot read {str(path)!r}: expected {field_name} to be {expected}. "
        f"Received: {field_name}={shown} (a {type(value).__name__}). The file is "
        "corrupted or was not written by Keras; do not load it."
    )
    return ModelFileError(message)


def _optional_text(path: Path, field_name: str, value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise _wrong_type(path, field_name, "a string", value)


def _check_manifest(path: Path, manifest: Any) -> dict[str, Any]:
    """The manifest's fields have the types save_model writes, or the file is bad."""
    if not isinstance(manifest, dict):
        raise _wrong_type(path, "the manifest", "a JSON object", manifest)
    for key, value in manifest.items():
        if key == "__frozen__":
            if not isinstance(value, list) or not all(
                isinstance(v, str) for v in value
            ):
                raise _wrong_type(
                    path, "manifest field __frozen__", "a list of strings", value
                )
        elif key == _guard.INTEGRITY_MARKER:
            if not isinstance(value, int) or isinstance(value, bool):
                raise _wrong_type(path, f"manifest field {key}", "an integer", value)
        elif (not key.startswith("__") or key in _STRING_NOTES) and not isinstance(
            value, str
        ):
            # A class's module, or a note read as a string.
            raise _wrong_type(path, f"manifest field {key!r}", "a string", value)
        # Other notes ("__name__" keys) are read by the code that wrote them.
    return manifest


_STRING_NOTES = frozenset({"__top__", "__outputs__", "__backend__"})


def _comment(path: Path, comment: bytes) -> dict[str, Any]:
    """The JSON object save_model keeps in the archive comment, or {}."""
    prefix = b'{"' + MANIFEST_KERAS.encode() + b'"'
    if not comment.startswith(prefix):
        return {}  # plain Keras writes no comment; another tool's is not ours
    value = _guard.loads(path, comment, "the archive comment")
    if not isinstance(value, dict):
        raise _wrong_type(path, "the archive comment", "a JSON object", value)
    return value


def verify_keras_data(path: Path) -> None:
    """Read every member of a `.keras` archive through, so that its CRC-32 (and
    for files save_model wrote, the integrity record) is checked: Keras reads
    the weights with seeks, which zipfile never checks."""
    try:
        with zipfile.ZipFile(path) as archive:
            comment = _comment(path, archive.comment)
            _guard.keras_integrity(
                archive, path, comment, MANIFEST_KERAS, read_data=True
            )
    except ModelFileError:
        raise
    except Exception as err:
        raise _corrupt(path, "keras", f"{type(err).__name__}: {err}") from err


def _keras_weight_shapes(
    archive: zipfile.ZipFile, path: Path
) -> dict[str, tuple[int, ...]]:
    """The weights member's dataset shapes, read from its metadata only (the
    member is opened in place, not read), after its structure was checked."""
    import h5py

    shapes: dict[str, tuple[int, ...]] = {}
    with (
        _open_member(archive, path, "model.weights.h5") as member,
        h5py.File(member, "r") as weights,
    ):
        _guard.h5_structure(weights, path, " (model.weights.h5)")

        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset):
                shapes[name] = tuple(int(d) for d in obj.shape)

        weights.visititems(visit)
    return shapes


@contextlib.contextmanager
def _open_member(archive: zipfile.ZipFile, path: Path, name: str) -> Iterator[Any]:
    """A stored (uncompressed) member as a seekable window onto the file, so
    HDF5 reads only the bytes it needs; a compressed one through zipfile
    (whose backward seeks re-read the member from its start)."""
    info = archive.getinfo(name)
    if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
        with archive.open(info) as member:
            yield member
        return
    with open(path, "rb") as raw:
        raw.seek(info.header_offset)
        header = raw.read(30)
        if len(header) != 30 or header[:4] != ZIP_MAGIC:
            raise _corrupt(path, "keras", f"a broken local header for {name!r}")
        name_length = int.from_bytes(header[26:28], "little")
        extra_length = int.from_bytes(header[28:30], "little")
        start = info.header_offset + 30 + name_length + extra_length
        yield _Window(raw, start, info.file_size)


open_member = _open_member


class _Window(io.RawIOBase):
    """Bytes `start` to `start + size` of an open file, read-only."""

    def __init__(self, raw: Any, start: int, size: int) -> None:
        super().__init__()
        self._raw, self._start, self._size, self._pos = raw, start, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        count = max(0, min(len(buffer), self._size - self._pos))
        self._raw.seek(self._start + self._pos)
        data = self._raw.read(count)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


def _read_h5(handle: Any, path: Path, size: int, weight_shapes: bool) -> FileContents:
    import h5py

    try:
        # Links, external and virtual storage are refused before anything is read.
        _guard.h5_structure(handle, path)
        attrs = {key: handle.attrs[key] for key in handle.attrs}
        if "model_config" not in attrs:
            raise _weights_only(path, handle)
        model_config = _guard.loads(
            path,
            _attr_text(path, "model_config", attrs["model_config"]),
            "model_config",
        )
        training = attrs.get("training_config")
        compile_config = (
            _guard.loads(
                path, _attr_text(path, "training_config", training), "training_config"
            )
            if training is not None
            else None
        )
        manifest_raw = attrs.get(MANIFEST_H5)
        manifest = (
            _guard.loads(path, _attr_text(path, MANIFEST_H5, manifest_raw), MANIFEST_H5)
            if manifest_raw is not None
            else {}
        )
        manifest = _check_manifest(path, manifest)
        _guard.h5_integrity(handle, path, manifest)
        shapes: dict[str, tuple[int, ...]] = {}
        if weight_shapes and "model_weights" in handle:

            def visit(name: str, obj: Any) -> None:
                if isinstance(obj, h5py.Dataset):
                    shapes[name] = tuple(int(d) for d in obj.shape)

            handle["model_weights"].visititems(visit)
    except ModelFileError:
        raise
    except Exception as err:  # h5py raises OSError/KeyError/RuntimeError variants
        raise _corrupt(path, "h5", f"{type(err).__name__}: {err}") from err
    if not isinstance(model_config, dict) or "class_name" not in model_config:
        raise _corrupt(path, "h5", "a model_config that is not a Keras model config")
    # Legacy .h5 records no date; its backend is always an attribute.
    stamp = {key: _attr_plain(attrs.get(key)) for key in ("keras_version", "backend")}
    return _contents(
        path,
        "h5",
        size,
        model_config,
        ("training_config", compile_config),
        stamp,
        shapes,
        manifest,
        backend_note=False,
    )


def _attr_plain(value: Any) -> Any:
    """A scalar string attribute as str; anything else as it is."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np_str_types()):
        return str(value)
    return value


def np_str_types() -> tuple[type, ...]:
    import numpy as np

    return (np.str_, np.bytes_)


def _attr_text(path: Path, name: str, value: Any) -> str | bytes:
    """A JSON attribute's text; an attribute of another type is a bad file."""
    if isinstance(value, (bytes, str)):
        return value
    raise _wrong_type(path, f"attribute {name}", "a JSON string", value)


def _text(value: Any) -> Any:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _weights_only(path: Path, handle: Any) -> ModelFileError:
    """An HDF5 file without a model config: weights saved by `save_weights`
    (its layer groups are there), or not a Keras file at all."""
    groups = ("layers", "_layer_checkpoint_dependencies")  # .weights.h5 files
    if "layer_names" in handle.attrs or any(name in handle for name in groups):
        message = (
            f"Cannot load {str(path)!r} as a model: expected a model file (config "
            "and weights). Received: a weights-only file (no model config), written "
            "by save_weights; it holds no architecture to rebuild. Fix: build the "
            f"same model in code, then call `model.load_weights({str(path)!r})`."
        )
        return ModelFileError(message)
    return _corrupt(path, "h5", "an HDF5 file with no model config")


# ---------------------------------------------------------------------------
# The custom classes a config needs
# ---------------------------------------------------------------------------


def required_classes(contents: FileContents) -> list[ClassRef]:
    """Every non-Keras class or function the file names, deduplicated, in order."""
    found: dict[str, ClassRef] = {}
    configs: list[Any] = [contents.model_config]
    if contents.compile_config is not None:
        configs.append(contents.compile_config)
    top = contents.model_config
    for config in configs:
        for name, class_name, module in _walk_custom(config):
            if name not in found:
                module = module or contents.manifest.get(name)
                found[name] = ClassRef(name, class_name, module, _resolvable(name))
    # Legacy .h5 names compiled loss and metric functions by a bare string.
    if contents.format == "h5" and isinstance(contents.compile_config, dict):
        for name in _compiled_names(contents.compile_config):
            if name in found or _resolvable(name) or _keras_compile_name(name):
                continue
            module = contents.manifest.get(name)
            found[name] = ClassRef(name, name.rsplit(">", 1)[-1], module, False)
    # Legacy .h5 stores the top-level model by bare class name only.
    if contents.format == "h5":
        bare = top.get("class_name", "")
        registered = contents.notes.get("__top__") or bare
        if ">" not in bare and not _resolvable(bare) and not _is_keras_name(bare):
            module = contents.manifest.get(registered)
            found.setdefault(registered, ClassRef(registered, bare, module, False))
    return list(found.values())


def _walk_custom(config: Any) -> list[tuple[str, str, str | None]]:
    from ._configwalk import objects

    out: list[tuple[str, str, str | None]] = []
    for obj in objects(config):
        if "config" not in obj:
            continue
        registered, class_name, module = (
            obj.get("registered_name"),
            obj["class_name"],
            obj.get("module"),
        )
        if class_name == "function" and isinstance(obj.get("config"), str):
            name = obj["config"]
            if ">" in name or (
                module
                and not _is_keras_module(module)
                and not (module == "builtins" and _is_keras_function(name))
            ):
                out.append((name, name.rsplit(">", 1)[-1], _module_or_none(module)))
        elif isinstance(registered, str) and (
            ">" in registered or (module is not None and not _is_keras_module(module))
        ):
            out.append((registered, class_name, _module_or_none(module)))
        elif ">" in class_name:  # legacy .h5 nested objects
            out.append((class_name, class_name.rsplit(">", 1)[-1], None))
    return out


def _compiled_names(training: dict[str, Any]) -> list[str]:
    """The strings naming losses and metrics in a legacy `.h5` training config."""
    names: list[str] = []
    stack = [training.get(key) for key in ("loss", "metrics", "weighted_metrics")]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, dict) and "class_name" not in item:
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return names


def _keras_compile_name(name: str) -> bool:
    """Whether `compile` understands `name` as a Keras loss or metric."""
    if ">" in name:
        return False
    if name in ("accuracy", "acc", "crossentropy", "ce"):
        return True
    import keras

    for get in (keras.losses.get, keras.metrics.get):
        try:
            if get(name) is not None:
                return True
        except (ValueError, TypeError):
            continue
    return False


def _module_or_none(module: Any) -> str | None:
    if not isinstance(module, str) or module in ("builtins", "__main__"):
        return None
    return module


def _is_keras_module(module: str) -> bool:
    from ._registry import is_keras_module

    return is_keras_module(module)


def _is_keras_name(name: str) -> bool:
    from ._registry import is_keras_class_name

    return is_keras_class_name(name)


def _is_keras_function(name: str) -> bool:
    """A function Keras saves with module "builtins" and finds by its bare name
    in its own modules (`keras.activations.relu`, `keras.losses.mse`, ...)."""
    from ._registry import keras_function

    return keras_function(name) is not None


def _resolvable(name: str) -> bool:
    from ._keras_compat import custom_objects

    return name in custom_objects()
