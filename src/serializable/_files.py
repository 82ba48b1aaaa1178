"""`save_model` and `load_model`: atomic, verified, repaired, and clear on failure.

Saving writes to a temporary file in the same directory and renames it over
the target only when everything succeeded (and, with `verify=True`, when the
file reloads into the same model), so a crash or an exception never leaves a
truncated file or destroys the previous good one. Loading reads the file's
metadata first, so a missing class is reported with every other missing class
and the module it lived in, and a corrupted file is reported as such, never as
a traceback from `zipfile`, `h5py` or Keras internals.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from . import (
    _compile,
    _fastbuild,
    _guard,
    _h5,
    _inspect,
    _keras2,
    _keras_compat,
    _manifest,
    _savecheck,
)
from ._compare import compare_models
from ._errors import (
    MissingClassError,
    ModelFileError,
    RoundtripError,
    SerializableError,
    innermost,
)

__all__ = ["load_model", "save_model"]


@dataclass(frozen=True)
class LoadOptions:
    """How to load a file, as `load_model` was asked, passed down as one value.

    `optimizer_state=False` compiles the model (with `compile`) but leaves the
    optimizer's saved variables in the file. `safe_mode` is Keras's
    (`load_model`'s explicit opt-out for trusted files).
    """

    compile: bool = True
    custom_objects: dict[str, Any] | None = None
    optimizer_state: bool = True
    safe_mode: bool = True


def _format_for(path: Path, action: str) -> str:
    fix = "Use model.keras (recommended) or model.h5."
    return _inspect.format_for_suffix(path, action, fix)


def save_model(
    model: keras.Model,
    filepath: str | os.PathLike[str],
    overwrite: bool = True,
    zipped: bool | None = None,
    *,
    include_optimizer: bool = True,
    verify: bool = False,
) -> Path:
    """Save `model` to `filepath` atomically, in the format its suffix names.

    A drop-in for `keras.saving.save_model`: the same parameter names and
    positional order (`model, filepath, overwrite, zipped`), plus the
    keyword-only `include_optimizer` and `verify`.

    `.keras` is written by Keras; `.h5` by keras-serializable's legacy writer,
    which stores registered model names, unique weight names and optimizer
    slots so the file reloads exactly (see `load_model`). What `.h5` cannot
    hold is refused before anything is written.

    Args:
        model: The model to save.
        filepath: Target file; `.keras`, `.h5` or `.hdf5`.
        overwrite: Replace an existing file. With False an existing file
            raises `FileExistsError` (Keras would prompt instead).
        zipped: As in Keras: `None` or `True` writes a `.keras` zip archive.
            `False` (Keras's unzipped directory) is not supported, since a
            directory cannot be replaced atomically; it raises `ValueError`.
        include_optimizer: Save the optimizer and its state with the model.
        verify: Reload the new file and compare it with `model` (class,
            configs, weights, outputs) before it replaces the old file.

    Returns:
        The path written.

    Raises:
        ValueError: If the suffix names no supported format, or `zipped` is
            False.
        FileExistsError: If `filepath` exists and `overwrite` is False.
        FormatLimitError: If `.h5` cannot hold something in the model.
        RoundtripError: If `verify` finds a difference; the old file is kept.

    Example:

    ```python
    import keras
    import serializable

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    serializable.save_model(model, "model.h5", verify=True)
    restored = serializable.load_model("model.h5")
    ```
    """
    path = Path(filepath)
    fmt = _format_for(path, "save to")
    if zipped is not None and not zipped:
        message = (
            f"Cannot save to {str(path)!r}: expected zipped=None or True; "
            "keras-serializable writes a single file, replaced atomically. "
            "Received: zipped=False. Leave zipped out, or call "
            "keras.saving.save_model(model, path, zipped=False) for Keras's "
            "unzipped directory."
        )
        raise ValueError(message)
    if not overwrite and os.path.lexists(path):
        raise FileExistsError(_exists_message(path))
    # A symlink is written through, as Keras does: its target gets the model.
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    existing = _writable_target(path, target)
    if fmt == "h5":
        _h5.check_limits(model)
    _savecheck.check(model)
    directory = target.parent if str(target.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(directory, target)
    # The writer creates the file: re-opening an existing (even empty) file
    # truncates it, and on ext4 a truncated file is flushed to disk when it is
    # closed (auto_da_alloc), which costs time a plain save does not pay. The
    # name carries this process's id, so a later save can tell a temporary
    # left by a killed process from one still being written.
    token = f"{os.getpid()}-{_host_tag()}{secrets.token_hex(4)}"
    tmp = directory / f".{target.stem}.{token}.tmp{target.suffix}"
    try:
        if fmt == "keras":
            with _loss_scale_recorded(model), _savecheck.settings_recorded(model):
                keras.saving.save_model(model, tmp, include_optimizer=include_optimizer)
            _add_keras_manifest(tmp, model)
        else:
            with _savecheck.settings_recorded(model):
                _h5.save(model, tmp, include_optimizer=include_optimizer)
        if verify:
            _verify(model, tmp, include_optimizer)
        if existing is not None:
            os.chmod(tmp, stat.S_IMODE(existing.st_mode))  # a 0600 file stays 0600
        _fsync(tmp)  # the data is on disk before the name points at it
        if overwrite:
            os.replace(tmp, target)
        else:
            _place_exclusive(tmp, target, path)
        _fsync_directory(directory)  # and the rename is on disk when we return
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _exists_message(path: Path) -> str:
    return (
        f"Cannot save to {str(path)!r}: expected a new path with "
        "overwrite=False. Received: an existing file. Pass overwrite=True or "
        "choose another path."
    )


def _writable_target(path: Path, target: Path) -> os.stat_result | None:
    """The existing target's status, or None; a read-only one is refused, as
    Keras's `model.save` refuses it (the old file is never replaced)."""
    try:
        existing = os.stat(target)
    except FileNotFoundError:
        return None
    if stat.S_ISDIR(existing.st_mode):
        message = (
            f"Cannot save to {str(path)!r}: expected a file path. Received: a "
            "directory. Pass the path of the model file to write inside it."
        )
        raise IsADirectoryError(message)
    if not os.access(target, os.W_OK) or not existing.st_mode & 0o222:
        message = (
            f"Cannot save to {str(path)!r}: expected a writable file. Received: a "
            f"read-only file (mode {stat.S_IMODE(existing.st_mode):o}), which "
            "is never replaced. Make it writable (chmod u+w) or choose another "
            "path."
        )
        raise PermissionError(message)
    return existing


def _place_exclusive(tmp: Path, target: Path, path: Path) -> None:
    """Give the new file its name only if no file has it: a hard link fails if
    the name exists, so two savers never both succeed (overwrite=False)."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise FileExistsError(_exists_message(path)) from None
    except OSError:
        # No hard links here (some network and FAT file systems): reserve the
        # name with an exclusive create, then rename over the reservation.
        try:
            reserved = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            raise FileExistsError(_exists_message(path)) from None
        os.close(reserved)
        os.replace(tmp, target)


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable (POSIX; a no-op where directories
    cannot be opened, as on Windows)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


_STALE_AGE_S = 3600.0  # for temporaries named before they carried a process id


def _remove_stale_temporaries(directory: Path, target: Path) -> None:
    """Remove temporaries of `target` left by saves that were killed: those of
    a process of this machine that no longer runs (and older-style ones over
    an hour old)."""
    import re
    import time

    pattern = re.compile(
        rf"\.{re.escape(target.stem)}\.(?:(\d+)-([0-9a-f]{{4}})[0-9a-f]{{8}}|[0-9a-f]{{16}})"
        rf"\.tmp{re.escape(target.suffix)}"
    )
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        match = pattern.fullmatch(name)
        if match is None:
            continue
        candidate = directory / name
        try:
            if match.group(1) is not None:
                if match.group(2) != _host_tag() or _process_alive(int(match.group(1))):
                    continue
            elif time.time() - candidate.stat().st_mtime < _STALE_AGE_S:
                continue
            candidate.unlink()
        except OSError:
            continue  # gone already, or not ours to remove


def _host_tag() -> str:
    """4 hex digits naming this machine: a temporary written from another
    machine (on a shared file system) is never judged by this one's pids."""
    import hashlib
    import socket

    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:4]


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # another thread of this process may be saving
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True
    return True


@contextlib.contextmanager
def _loss_scale_recorded(model: keras.Model) -> Iterator[None]:
    """Save the `LossScaleOptimizer` Keras wrapped around the compiled one.

    Under `mixed_float16`, `compile` wraps the optimizer it was given, but
    the compile config keeps the unwrapped one: reloaded where the policy is
    float32, the model would come back with a plain optimizer (and its loss
    scale lost). While saving, the compile config names the wrapper.
    """
    optimizer = getattr(model, "optimizer", None)
    config = _keras_compat.compile_config_dict(model)
    if (
        not isinstance(config, dict)
        or not isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        or config.get("optimizer") is not optimizer.inner_optimizer
    ):
        yield
        return
    config["optimizer"] = optimizer
    try:
        yield
    finally:
        config["optimizer"] = optimizer.inner_optimizer


def _add_keras_manifest(path: Path, model: keras.Model) -> None:
    """Add keras-serializable's notes to the archive; Keras ignores them."""
    import json
    import zipfile

    with zipfile.ZipFile(path, "a") as archive:
        # The config Keras just wrote names every custom object: no need to
        # serialize the model a second time.
        config = json.loads(archive.read("config.json"))
        manifest = _manifest.manifest(model, config)
        manifest[_guard.INTEGRITY_MARKER] = _guard.INTEGRITY_VERSION
        # In the archive comment, not a fourth member: Keras's loader takes any
        # member beyond its three for an asset and extracts the whole archive,
        # weights included, to a temporary directory on every load. The
        # integrity record (each member's size and CRC-32, and a digest of them
        # and the manifest) goes with it.
        record = _guard.keras_record(archive, manifest)
        archive.comment = json.dumps(
            {_inspect.MANIFEST_KERAS: manifest, _guard.INTEGRITY_KERAS: record}
        ).encode()


def _verify(model: keras.Model, path: Path, include_optimizer: bool) -> None:
    """Reload `path` and compare it with `model`: class, configs, weights and
    outputs (`compare_models`).

    The reload is `load_model`'s, checksums and repairs included, except that
    the optimizer's saved variables are not read back: nothing compares them,
    and for a large model they are two thirds of the file. With
    `include_optimizer` the reloaded model is still compiled from the file's
    training configuration, so one that cannot be rebuilt fails here.
    """
    options = LoadOptions(compile=include_optimizer, optimizer_state=False)
    restored = _load_file(path, options)
    problems = compare_models(model, restored)
    if problems:
        lines = [
            f"save_model(verify=True): the new file does not reload into model "
            f"'{model.name}'; the previous file was left untouched:"
        ]
        lines.extend(f"  {problem}" for problem in problems)
        raise RoundtripError("\n".join(lines), {"verify": problems})


def load_model(
    filepath: str | os.PathLike[str],
    custom_objects: dict[str, Any] | None = None,
    compile: bool = True,
    safe_mode: bool = True,
) -> keras.Model:
    """Load a `.keras` or `.h5` model safely, repairing what Keras cannot load.

    A drop-in for `keras.saving.load_model`: the same parameter names and
    positional order (`filepath, custom_objects, compile, safe_mode`).

    The format is read from the file's bytes, not trusted from its suffix.
    Registered classes need no `custom_objects`. Legacy `.h5` files written by
    plain Keras 3 get the repairs that apply to them: compiled loss and metric
    names such as `"mse"`, optimizer slots restored so training resumes,
    operations saved as layers (see the pitfalls page of the documentation,
    https://keras-serializable.github.io/keras-serializable/pitfalls/). No
    code from the file is run: nothing is unpickled, Keras's safe mode stays
    on, no module is imported because a file names it.

    Args:
        filepath: The model file.
        custom_objects: Extra name -> class mappings, for classes you cannot
            register.
        compile: Compile the model with its saved training configuration.
        safe_mode: Keras's safe mode, on by default: a file that would run
            code when loaded (a `Lambda` layer's Python bytecode) is refused.
            `safe_mode=False` is Keras's explicit opt-in for files you trust
            completely, passed through to Keras unchanged; never use it on a
            file from someone else.

    Returns:
        The loaded model.

    Raises:
        ModelFileError: If the path is missing, a directory, a SavedModel, empty,
            truncated, corrupted, or not a model file.
        MissingClassError: If classes the file needs are not registered here;
            the message lists every one, with the module it was saved from.

    Example:

    ```python
    import serializable
    import my_project.layers  # registers the custom classes

    model = serializable.load_model("model.h5")
    ```
    """
    options = LoadOptions(compile, custom_objects, safe_mode=safe_mode)
    return _load_file(Path(filepath), options)


def _load_file(path: Path, options: LoadOptions) -> keras.Model:
    """`load_model`, with its arguments as `options`."""
    # An .h5 file is opened once: its metadata, then the model, from one handle.
    with _inspect.opened(path, weight_shapes=False) as (contents, handle):
        # .keras: every member read through once (its CRC-32 and the integrity
        # record checked), alongside Keras's load: reading and zlib.crc32
        # release the GIL. Damage found wins over any error of the load.
        checker = _Checker(path) if contents.format == "keras" else None
        keras2 = False
        try:
            keras2 = _keras2.is_keras2(contents)
            if keras2:  # configs rewritten for Keras 3; refusals raised here
                _keras2.prepare(contents, options.custom_objects, options.safe_mode)
            _check_classes(contents, options.custom_objects or {})
            load = _load_keras2 if keras2 else _load
            model = load(path, contents, handle, options)
        except BaseException:
            if checker is not None:
                checker.result()
            raise
        if checker is not None:
            checker.result()
        if keras2:
            return model
    _manifest.restore_notes(model, contents.notes)
    return model


class _Checker:
    """`_inspect.verify_keras_data(path)` in a thread; `result()` re-raises."""

    def __init__(self, path: Path) -> None:
        import threading

        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(path,), daemon=True)
        self._thread.start()

    def _run(self, path: Path) -> None:
        try:
            _inspect.verify_keras_data(path)
        except BaseException as err:  # handed to the loading thread
            self._error = err

    def result(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error


def _load(
    path: Path, contents: _inspect.FileContents, handle: Any, options: LoadOptions
) -> keras.Model:
    """Build the model from an opened file; its errors become ours."""
    compile, custom_objects = options.compile, options.custom_objects
    safe_mode, optimizer_state = options.safe_mode, options.optimizer_state
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*HDF5 file.*legacy.*")
            if contents.format == "h5":
                return _h5.load_open(handle, contents, options)
            with _keras_path(path) as keras_path:
                compiled = compile and optimizer_state

                def keras_load() -> keras.Model:
                    return keras.saving.load_model(
                        keras_path,
                        custom_objects=custom_objects,
                        compile=compiled,
                        safe_mode=safe_mode,
                    )

                if compiled and contents.compile_config:
                    # An optimizer is created with a value (its iteration
                    # count), which cannot be left unfilled.
                    if _compile_skipped(contents, custom_objects):
                        model = _load_compiled_as_saved(
                            keras_load, path, contents, custom_objects, safe_mode
                        )
                    else:
                        model = keras_load()
                else:
                    # Keras's loader builds the model, then assigns the saved
                    # values: unfilled, each variable is made from its value
                    # without running its initializer first (`_fastbuild.Unfilled`).
                    unfilled = _fastbuild.Unfilled()
                    model = unfilled.build(keras_load)
                    unfilled.finish()
            if compile and not optimizer_state and contents.compile_config:
                # What Keras's loader does before it reads the optimizer state.
                with keras.saving.custom_object_scope(custom_objects or {}):
                    model.compile_from_config(contents.compile_config)
            return model
    except SerializableError as err:
        if str(path) in str(err) or isinstance(err, MissingClassError):
            raise
        # Raised from inside Keras's loader (a config value that cannot be
        # decoded, say): the same error, naming the file.
        try:
            named = type(err)(f"Cannot load {str(path)!r}: {err}")
        except TypeError:
            raise err from None
        raise named from err
    except RecursionError as err:
        message = (
            f"Cannot load {str(path)!r}: expected a model config of reasonable "
            "depth. Received: one that exhausts the recursion limit while it is "
            "rebuilt. Do not load this file."
        )
        raise ModelFileError(message) from err
    except OSError as err:  # h5py: a checksum or a truncated dataset
        message = (
            f"Cannot load {str(path)!r}: expected a complete {contents.format} model "
            f"file. Received: {innermost(err)} while reading its data. The file is "
            "truncated or corrupted; save or copy it again."
        )
        raise ModelFileError(message) from err
    except Exception as err:
        message = (
            f"Cannot load {str(path)!r}: expected a model Keras can rebuild from "
            f"this {contents.format} file. Received: {innermost(err)}. If the file "
            "was written by other code, check its classes with `serializable "
            "inspect`."
        )
        raise ModelFileError(message) from err


# What Keras's loader warns when it skips a custom `compile()`, and then the
# optimizer state it cannot load into the model's own default optimizer.
_SKIPPED_COMPILE = r"`compile\(\)` was not called as part of model loading"
_SKIPPED_OPTIMIZER = r"Skipping variable loading for optimizer"


def _top_class(
    contents: _inspect.FileContents, custom_objects: dict[str, Any] | None
) -> type | None:
    """The saved model's class, looked up as Keras will (passed, then
    registered objects); None when it is Keras's own or cannot be found."""
    config = contents.model_config
    if not isinstance(config, dict):
        return None
    for name in (config.get("registered_name"), config.get("class_name")):
        if not isinstance(name, str):
            continue
        found = keras.saving.get_registered_object(name, custom_objects)
        if isinstance(found, type):
            return found
    return None


def _compile_skipped(
    contents: _inspect.FileContents, custom_objects: dict[str, Any] | None
) -> bool:
    """Whether Keras's loader would leave this model uncompiled from its saved
    compile config (a class that overrides `compile()`, such as keras-hub's
    `Task`); see docs/pitfalls.md#custom-compile-on-load."""
    cls = _top_class(contents, custom_objects)
    return (
        cls is not None
        and issubclass(cls, keras.Model)
        and _keras_compat.compile_skipped_on_load(cls)
    )


def _load_compiled_as_saved(
    keras_load: Any,
    path: Path,
    contents: _inspect.FileContents,
    custom_objects: dict[str, Any] | None,
    safe_mode: bool,
) -> keras.Model:
    """Keras's load, then what it skips for a class with its own `compile()`:
    that `compile` called with the saved (deserialized) arguments, and the
    optimizer's saved variables (iterations and slots) assigned, so the next
    training step is the one the saved model would have taken.

    Keras warns that it skipped `compile()` and, for a class that compiles
    itself with defaults (keras-hub's `Task`), that the saved optimizer state
    does not fit that default optimizer; both are what this repairs.
    """
    config = contents.compile_config
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_SKIPPED_COMPILE)
        warnings.filterwarnings("ignore", message=_SKIPPED_OPTIMIZER)
        model = keras_load()
    with keras.saving.custom_object_scope(custom_objects or {}):
        arguments = keras.saving.deserialize_keras_object(
            config, custom_objects=custom_objects, safe_mode=safe_mode
        )
    if not isinstance(arguments, dict):
        return model
    if not _compile.compile_takes(model, arguments):
        return model
    model.compile(**arguments)
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        _restore_keras_optimizer(model, optimizer, path)
    return model


def _restore_keras_optimizer(model: keras.Model, optimizer: Any, path: Path) -> None:
    """Assign the optimizer variables saved under "optimizer" in the .keras
    weights member, building the optimizer first when the file has its slots
    (it was saved after training)."""
    import zipfile

    import h5py

    arrays: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as archive:
        if "model.weights.h5" not in archive.namelist():
            return
        with (
            _inspect.open_member(archive, path, "model.weights.h5") as member,
            h5py.File(member, "r") as weights,
        ):
            group = weights.get("optimizer/vars")
            if isinstance(group, h5py.Group):
                arrays = {key: np.asarray(group[key]) for key in group}
    if not arrays:
        return
    if len(optimizer.variables) != len(arrays) and model.built:
        optimizer.build(model.trainable_variables)
    # Keras's own method: it warns and leaves the optimizer fresh when the
    # saved state does not fit, as Keras's loader does.
    optimizer.load_own_variables(arrays)


def _load_keras2(
    path: Path, contents: _inspect.FileContents, handle: Any, options: LoadOptions
) -> keras.Model:
    """A Keras 2 file (see `_keras2`); its errors become ours."""
    try:
        return _keras2.load(path, contents, handle, options)
    except SerializableError:
        raise
    except Exception as err:
        message = (
            f"Cannot load {str(path)!r}: expected a Keras 2 model Keras 3 can "
            f"rebuild once translated. Received: {innermost(err)}. See "
            f"{_keras2.DOCS} for what cannot be translated."
        )
        raise ModelFileError(message) from err


@contextlib.contextmanager
def _keras_path(path: Path) -> Iterator[Path]:
    """Keras insists on a .keras suffix; a misnamed zip is read through a link."""
    if path.suffix == ".keras":
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="serializable-load-") as directory:
        link = Path(directory) / (path.stem + ".keras")
        try:
            link.symlink_to(path.resolve())
        except OSError:
            shutil.copyfile(path, link)
        yield link


def _check_classes(
    contents: _inspect.FileContents, custom_objects: dict[str, Any]
) -> None:
    missing = [
        ref
        for ref in _inspect.required_classes(contents)
        if not ref.importable
        and ref.registered_name not in custom_objects
        and ref.class_name not in custom_objects
    ]
    if not missing:
        return
    modules = sorted({ref.module for ref in missing if ref.module})
    lines = [
        f"Cannot load {str(contents.path)!r}: expected every custom class and "
        "function it needs to be registered in this process. Received: "
        f"{len(missing)} that are not:"
    ]
    lines.extend(f"  - {ref.describe()}" for ref in missing)
    if modules:
        # The module names come from the file: never advise importing them
        # unconditionally (importing runs a module's code).
        claimed = ", ".join(modules)
        lines.append(
            f"The file claims they come from module(s) {claimed}. Fix: if you "
            "trust this file and those are your modules, import them before "
            "loading; import only a trusted file's modules, never one that "
            "only the file names."
        )
    else:
        lines.append(
            "Fix: import the module that defines and registers them before "
            "loading (the file does not record where they lived)."
        )
    raise MissingClassError("\n".join(lines), missing)
