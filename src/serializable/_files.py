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
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras

from . import _h5, _inspect, _savecheck
from ._errors import MissingClassError, ModelFileError, SerializableError

__all__ = ["load_model", "save_model"]

_SUFFIXES = {".keras": "keras", ".h5": "h5", ".hdf5": "h5"}


def _format_for(path: Path, action: str) -> str:
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        message = (
            f"Cannot {action} {str(path)!r}: expected a path ending in .keras, .h5 "
            f"or .hdf5, which chooses the format. Received: suffix "
            f"{path.suffix or '(none)'!r}. Use model.keras (recommended) or model.h5."
        )
        raise ValueError(message)
    return fmt


def save_model(
    model: keras.Model,
    path: str | os.PathLike[str],
    *,
    overwrite: bool = True,
    include_optimizer: bool = True,
    verify: bool = False,
) -> Path:
    """Save `model` to `path` atomically, in the format its suffix names.

    `.keras` is written by Keras; `.h5` by keras-serializable's legacy writer,
    which stores registered model names, unique weight names and optimizer
    slots so the file reloads exactly (see `load_model`). What `.h5` cannot
    hold is refused before anything is written.

    Args:
        model: The model to save.
        path: Target file; `.keras`, `.h5` or `.hdf5`.
        overwrite: Replace an existing file. With False an existing file
            raises `FileExistsError`.
        include_optimizer: Save the optimizer and its state with the model.
        verify: Reload the new file and compare it with `model` (class,
            configs, weights, outputs) before it replaces the old file.

    Returns:
        The path written.

    Raises:
        ValueError: If the suffix names no supported format.
        FileExistsError: If `path` exists and `overwrite` is False.
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
    path = Path(path)
    fmt = _format_for(path, "save to")
    if path.exists() and not overwrite:
        message = (
            f"Cannot save to {str(path)!r}: expected a new path with "
            "overwrite=False. Received: an existing file. Pass overwrite=True or "
            "choose another path."
        )
        raise FileExistsError(message)
    if fmt == "h5":
        _h5.check_limits(model)
    _savecheck.check(model)
    directory = path.parent if str(path.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    # The writer creates the file: re-opening an existing (even empty) file
    # truncates it, and on ext4 a truncated file is flushed to disk when it is
    # closed (auto_da_alloc), which costs time a plain save does not pay.
    tmp = directory / f".{path.stem}.{secrets.token_hex(8)}.tmp{path.suffix}"
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
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


@contextlib.contextmanager
def _loss_scale_recorded(model: keras.Model) -> Iterator[None]:
    """Save the `LossScaleOptimizer` Keras wrapped around the compiled one.

    Under `mixed_float16`, `compile` wraps the optimizer it was given, but
    the compile config keeps the unwrapped one: reloaded where the policy is
    float32, the model would come back with a plain optimizer (and its loss
    scale lost). While saving, the compile config names the wrapper.
    """
    compile_config = getattr(model, "_compile_config", None)
    optimizer = getattr(model, "optimizer", None)
    config = getattr(compile_config, "config", None)
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
        manifest = _h5.manifest(model, config)
        # In the archive comment, not a fourth member: Keras's loader takes any
        # member beyond its three for an asset and extracts the whole archive,
        # weights included, to a temporary directory on every load.
        archive.comment = json.dumps({_inspect.MANIFEST_KERAS: manifest}).encode()


def _verify(model: keras.Model, path: Path, include_optimizer: bool) -> None:
    """Reload `path` and compare it with `model`: class, configs, weights and
    outputs (`compare_models`).

    The reload is `load_model`'s, checksums and repairs included, except that
    the optimizer's saved variables are not read back: nothing compares them,
    and for a large model they are two thirds of the file. With
    `include_optimizer` the reloaded model is still compiled from the file's
    training configuration, so one that cannot be rebuilt fails here.
    """
    from ._roundtrip import RoundtripError, compare_models

    restored = _load_file(path, include_optimizer, None, optimizer_state=False)
    problems = compare_models(model, restored)
    if problems:
        lines = [
            f"save_model(verify=True): the new file does not reload into model "
            f"'{model.name}'; the previous file was left untouched:"
        ]
        lines.extend(f"  {problem}" for problem in problems)
        raise RoundtripError("\n".join(lines), {"verify": problems})


def load_model(
    path: str | os.PathLike[str],
    *,
    compile: bool = True,
    custom_objects: dict[str, Any] | None = None,
) -> keras.Model:
    """Load a `.keras` or `.h5` model safely, repairing what Keras cannot load.

    The format is read from the file's bytes, not trusted from its suffix.
    Registered classes need no `custom_objects`. Legacy `.h5` files written by
    plain Keras 3 get the repairs that apply to them: compiled loss and metric
    names such as `"mse"` (P7), optimizer slots restored so training resumes
    (P15), operations saved as layers (P12). No code from the file is run:
    nothing is unpickled, Keras's safe mode stays on, no module is imported
    because a file names it.

    Args:
        path: The model file.
        compile: Compile the model with its saved training configuration.
        custom_objects: Extra name -> class mappings, for classes you cannot
            register.

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
    return _load_file(Path(path), compile, custom_objects)


def _load_file(
    path: Path,
    compile: bool,
    custom_objects: dict[str, Any] | None,
    optimizer_state: bool = True,
) -> keras.Model:
    """`load_model`; `optimizer_state=False` leaves the optimizer's saved
    variables in the file (see `_load`)."""
    # An .h5 file is opened once: its metadata, then the model, from one handle.
    with _inspect.opened(path, weight_shapes=False) as (contents, handle):
        _check_classes(contents, custom_objects or {})
        model = _load(path, contents, handle, compile, custom_objects, optimizer_state)
    _h5.restore_notes(model, contents.notes)
    return model


def _load(
    path: Path,
    contents: _inspect.FileContents,
    handle: Any,
    compile: bool,
    custom_objects: dict[str, Any] | None,
    optimizer_state: bool = True,
) -> keras.Model:
    """Build the model from an opened file; its errors become ours.

    `optimizer_state=False` compiles the model (with `compile`) but leaves the
    optimizer's saved variables in the file.
    """
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*HDF5 file.*legacy.*")
            if contents.format == "h5":
                return _h5.load_open(
                    handle, contents, compile, custom_objects, optimizer_state
                )
            with _keras_path(path) as keras_path:
                compiled = compile and optimizer_state

                def keras_load() -> keras.Model:
                    return keras.saving.load_model(
                        keras_path,
                        custom_objects=custom_objects,
                        compile=compiled,
                        safe_mode=True,
                    )

                if compiled and contents.compile_config:
                    # An optimizer is created with a value (its iteration
                    # count), which cannot be left unfilled.
                    model = keras_load()
                else:
                    # Keras's loader builds the model, then assigns the saved
                    # values: unfilled, each variable is made from its value
                    # without running its initializer first (`_h5.Unfilled`).
                    unfilled = _h5.Unfilled()
                    model = unfilled.build(keras_load)
                    unfilled.finish()
            if compile and not optimizer_state and contents.compile_config:
                # What Keras's loader does before it reads the optimizer state.
                with keras.saving.custom_object_scope(custom_objects or {}):
                    model.compile_from_config(contents.compile_config)
            return model
    except SerializableError:
        raise
    except OSError as err:  # h5py: a checksum or a truncated dataset
        message = (
            f"Cannot load {str(path)!r}: expected a complete {contents.format} model "
            f"file. Received: {_innermost(err)} while reading its data. The file is "
            "truncated or corrupted; save or copy it again."
        )
        raise ModelFileError(message) from err
    except Exception as err:
        message = (
            f"Cannot load {str(path)!r}: expected a model Keras can rebuild from "
            f"this {contents.format} file. Received: {_innermost(err)}. If the file "
            "was written by other code, check its classes with `serializable "
            "inspect`."
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
        imports = "; ".join(f"import {m}" for m in modules)
        lines.append(f"Fix: `{imports}` before loading, or install the package(s).")
    else:
        lines.append(
            "Fix: import the module that defines and registers them before "
            "loading (the file does not record where they lived)."
        )
    raise MissingClassError("\n".join(lines), missing)


def _innermost(err: BaseException) -> str:
    from ._roundtrip import _innermost as innermost

    return innermost(err)
