"""Read what a model file holds without building the model or running its code.

Only JSON and HDF5 metadata are read: configs, versions, weight shapes. No
class named in the file is imported or instantiated, so inspecting a file from
a stranger is safe. Used by `load_model` (to list every missing class before
Keras trips over the first one) and by the `serializable inspect` command.
"""

from __future__ import annotations

import contextlib
import json
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


def sniff_format(path: Path) -> str:
    """The real format of `path` from its bytes: "keras", "h5" or an error."""
    if path.is_dir():
        if (path / "saved_model.pb").exists():
            message = (
                f"Cannot load {str(path)!r}: expected a .keras or .h5 file. "
                "Received: a TensorFlow SavedModel directory, which Keras 3 cannot "
                "load as a model. Load it with tf.saved_model.load or "
                "keras.layers.TFSMLayer, or re-export the model to .keras."
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
            names = set(archive.namelist())
            missing = {"config.json", "metadata.json"} - names
            if missing:
                raise _corrupt(
                    path, "keras", f"a zip archive without {sorted(missing)}"
                )
            config = json.loads(archive.read("config.json"))
            metadata = json.loads(archive.read("metadata.json"))
            manifest = (
                json.loads(archive.read(MANIFEST_KERAS))
                if MANIFEST_KERAS in names
                else _comment_manifest(archive.comment)
            )
            shapes: dict[str, tuple[int, ...]] = {}
            if weight_shapes and "model.weights.h5" in names:
                shapes = _keras_weight_shapes(archive)
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, json.JSONDecodeError, OSError, KeyError) as err:
        raise _corrupt(path, "keras", f"{type(err).__name__}: {err}") from err
    except Exception as err:  # zlib/CRC errors surface as several types
        raise _corrupt(path, "keras", f"{type(err).__name__}: {err}") from err
    if not isinstance(config, dict) or "class_name" not in config:
        raise _corrupt(path, "keras", "a config.json that holds no model config")
    return FileContents(
        path=path,
        format="keras",
        size=size,
        keras_version=metadata.get("keras_version"),
        backend=metadata.get("backend") or manifest.get("__backend__"),
        date_saved=metadata.get("date_saved"),
        model_config=config,
        compile_config=config.get("compile_config"),
        weight_shapes=shapes,
        manifest={k: v for k, v in manifest.items() if not k.startswith("__")},
        notes={k: v for k, v in manifest.items() if k.startswith("__")},
    )


def _comment_manifest(comment: bytes) -> dict[str, Any]:
    """The manifest save_model keeps in the archive comment (a zip member
    would make Keras extract the whole archive on every load)."""
    prefix = b'{"' + MANIFEST_KERAS.encode() + b'"'
    if not comment.startswith(prefix):
        return {}  # plain Keras writes no comment; another tool's is not ours
    # A cut in the last bytes of the file cuts the comment: the JSON breaks,
    # and json.JSONDecodeError is reported as a corrupted file.
    manifest = json.loads(comment)[MANIFEST_KERAS]
    return manifest if isinstance(manifest, dict) else {}


def _keras_weight_shapes(archive: zipfile.ZipFile) -> dict[str, tuple[int, ...]]:
    import io

    import h5py

    shapes: dict[str, tuple[int, ...]] = {}
    data = archive.read("model.weights.h5")
    with h5py.File(io.BytesIO(data), "r") as weights:

        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset):
                shapes[name] = tuple(int(d) for d in obj.shape)

        weights.visititems(visit)
    return shapes


def _read_h5(handle: Any, path: Path, size: int, weight_shapes: bool) -> FileContents:
    import h5py

    try:
        attrs = dict(handle.attrs)
        if "model_config" not in attrs:
            detail = (
                "an HDF5 file with no model config (a weights-only file? load "
                "it with model.load_weights)"
            )
            raise _corrupt(path, "h5", detail)
        model_config = json.loads(_text(attrs["model_config"]))
        training = attrs.get("training_config")
        compile_config = json.loads(_text(training)) if training is not None else None
        manifest_raw = attrs.get(MANIFEST_H5)
        manifest = json.loads(_text(manifest_raw)) if manifest_raw is not None else {}
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
    return FileContents(
        path=path,
        format="h5",
        size=size,
        keras_version=_text(attrs.get("keras_version")),
        backend=_text(attrs.get("backend")),
        date_saved=None,
        model_config=model_config,
        compile_config=compile_config,
        weight_shapes=shapes,
        manifest={k: v for k, v in manifest.items() if not k.startswith("__")},
        notes={k: v for k, v in manifest.items() if k.startswith("__")},
    )


def _text(value: Any) -> Any:
    return value.decode("utf-8") if isinstance(value, bytes) else value


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
    out: list[tuple[str, str, str | None]] = []
    if isinstance(config, dict):
        registered = config.get("registered_name")
        class_name = config.get("class_name")
        module = config.get("module")
        if isinstance(class_name, str) and "config" in config:
            if class_name == "function" and isinstance(config.get("config"), str):
                name = config["config"]
                if ">" in name or (
                    module
                    and not _is_keras_module(module)
                    and not (module == "builtins" and _is_keras_function(name))
                ):
                    out.append((name, name.rsplit(">", 1)[-1], _module_or_none(module)))
            elif isinstance(registered, str) and (
                ">" in registered
                or (module is not None and not _is_keras_module(module))
            ):
                out.append((registered, class_name, _module_or_none(module)))
            elif ">" in class_name:  # legacy .h5 nested objects
                out.append((class_name, class_name.rsplit(">", 1)[-1], None))
        for value in config.values():
            out.extend(_walk_custom(value))
    elif isinstance(config, (list, tuple)):
        for value in config:
            out.extend(_walk_custom(value))
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
    return module == "keras" or module.startswith("keras.")


def _is_keras_name(name: str) -> bool:
    from keras.src import layers, models

    return (
        name in layers.__dict__
        or name
        in {
            "Functional",
            "Model",
            "Sequential",
            "InputLayer",
        }
        or hasattr(models, name)
    )


def _is_keras_function(name: str) -> bool:
    """A function Keras saves with module "builtins" and finds by its bare name
    in its own modules (`keras.activations.relu`, `keras.losses.mse`, ...)."""
    from ._keras_compat import keras_builtin_function

    return keras_builtin_function(name) is not None


def _resolvable(name: str) -> bool:
    from keras.src.saving import object_registration

    return name in object_registration.GLOBAL_CUSTOM_OBJECTS
