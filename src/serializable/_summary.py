"""What the `serializable` commands find, as plain data for `_render` to print.

`inspect_file` describes a file from its metadata alone (`_inspect` reads it;
nothing is built or imported), as the JSON-ready dict `inspect --json`
prints. `check_file` and `convert_file` load the model, importing exactly the
modules passed with `--import`, and return a `CheckResult` or `ConvertResult`.
An input that cannot be used raises (`UsageError`, `ModelFileError`,
`MissingClassError`, ...); a problem found in the model is a result whose
`ok` is False. Nothing here is imported by `serializable --help`.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import math
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from importlib.machinery import PathFinder
from pathlib import Path
from typing import Any, Protocol

from . import _inspect
from ._errors import FormatLimitError, ModelFileError, UsageError


class _Progress(Protocol):
    def step(self, what: str) -> None: ...


# ---------------------------------------------------------------------------
# inspect
# ---------------------------------------------------------------------------


def inspect_file(path: str) -> dict[str, Any]:
    """`inspect`'s report on the file at `path`."""
    contents = _inspect.read_file(path)
    with importable_cwd():  # where `--import` would look for the modules
        return describe_file(contents)


@dataclass
class LayerInfo:
    """One layer of the tree; `params` is None when it cannot be told."""

    name: str
    class_name: str
    registered_name: str | None
    params: int | None
    children: list[LayerInfo] = field(default_factory=list)


def describe_file(contents: _inspect.FileContents) -> dict[str, Any]:
    """Everything `inspect` shows, as the JSON-ready dict `--json` prints."""
    from . import _keras2

    keras2 = None
    if _keras2.is_keras2(contents):  # described as it will load: translated
        keras2, contents = _keras2.describe(contents)
    top = contents.model_config
    class_name, registered, name = _identify(top)
    layers, total = _layer_tree(contents)
    classes = [
        {
            "registered_name": ref.registered_name,
            "class_name": ref.class_name,
            "module": ref.module,
            "importable": ref.importable,
            "module_found": _module_found(ref.module) if ref.module else None,
        }
        for ref in _inspect.required_classes(contents)
    ]
    if keras2:
        listed = {item["registered_name"] for item in classes}
        classes += [
            {"registered_name": name, "class_name": name.rsplit(">", 1)[-1],
             "module": None, "importable": False, "module_found": None}
            for name in keras2["missing"] if name not in listed
        ]  # fmt: skip
    return {
        "path": str(contents.path),
        "format": contents.format,
        "size_bytes": contents.size,
        "keras_version": contents.keras_version,
        "backend": contents.backend,
        "date_saved": contents.date_saved,
        "model": {
            "name": name,
            "class_name": class_name,
            "registered_name": registered,
        },
        "layers": [asdict(layer) for layer in layers],
        "total_params": total,
        "custom_classes": classes,
        "compile": _compile_info(contents.compile_config),
        "keras2": keras2,
    }


def _identify(entry: dict[str, Any]) -> tuple[str, str | None, str]:
    """Class name, registered name and layer name of one layer config."""
    raw = entry.get("class_name")
    class_name = raw if isinstance(raw, str) else "?"
    registered = entry.get("registered_name")
    if not isinstance(registered, str) or registered == class_name:
        # Legacy .h5 stores a registered class by its registered name alone;
        # Keras's own classes have no registered name of their own.
        registered = class_name if ">" in class_name else None
    class_name = class_name.rsplit(">", 1)[-1]
    inner = entry.get("config")
    name = entry.get("name")
    if not isinstance(name, str) and isinstance(inner, dict):
        name = inner.get("name")
    return class_name, registered, name if isinstance(name, str) else "?"


def _sublayers(entry: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The layer configs of a Functional or Sequential config, else None."""
    inner = entry.get("config")
    if isinstance(inner, dict) and isinstance(inner.get("layers"), list):
        return [layer for layer in inner["layers"] if isinstance(layer, dict)]
    return None


def _count(shapes: Any) -> int:
    return sum(math.prod(shape) for shape in shapes)


def _layer_tree(
    contents: _inspect.FileContents,
) -> tuple[list[LayerInfo], int]:
    """The layer tree and the total parameter count, from weight shapes alone.

    `.keras` files address each layer by its class name in snake case, made
    unique within its list (`layers/dense_1/vars/0`), the way Keras's saver
    walks `model.layers`; `.h5` files group weights under each top-level
    layer's name, with the variable paths of nested layers inside.
    """
    entries = _sublayers(contents.model_config) or []
    if contents.format == "keras":
        weights = {
            _keras_path(path): shape
            for path, shape in contents.weight_shapes.items()
            if path.split("/", 1)[0] != "optimizer"
        }
        return _layer_infos(entries, weights, _keras_split("")), _count(
            weights.values()
        )
    weights = dict(contents.weight_shapes)
    return _layer_infos(entries, weights, _h5_split(0)), _count(weights.values())


def _keras_path(path: str) -> str:
    # Keras 3.0 and 3.1 wrote "_layer_checkpoint_dependencies" where later
    # versions write "layers"; the names below it are the same.
    parts = path.split("/")
    return "/".join(
        "layers" if part == "_layer_checkpoint_dependencies" else part for part in parts
    )


def _snake_case(name: str) -> str:
    # The same conversion as keras.src.utils.naming.to_snake_case.
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


Weights = dict[str, tuple[int, ...]]
# How a file's weights divide among the layers of one list: each entry's own
# weights and how its sublayers divide those, and the prefix of weights that
# belong to the list's model itself rather than to a layer.
Split = Callable[
    [list[dict[str, Any]], Weights], tuple[list[tuple[Weights, "Split"]], str]
]


def _layer_infos(
    entries: list[dict[str, Any]], weights: Weights, split: Split
) -> list[LayerInfo]:
    """The layers `entries` configure, with the weights `split` gives each."""
    owned, model_prefix = split(entries, weights)
    infos: list[LayerInfo] = []
    claimed: set[str] = set()
    for entry, (own, split_own) in zip(entries, owned, strict=True):
        class_name, registered, name = _identify(entry)
        children = _sublayers(entry)
        infos.append(
            LayerInfo(
                name,
                class_name,
                registered,
                _count(own.values()),
                _layer_infos(children, own, split_own) if children is not None else [],
            )
        )
        claimed.update(own)
    if any(p not in claimed and not p.startswith(model_prefix) for p in weights):
        _unknown_if_empty(infos)
    return infos


def _keras_split(prefix: str) -> Split:
    """`.keras` names a layer by its class in snake case, made unique within
    its list (`layers/dense_1/`), as Keras's saver does for `model.layers`."""

    def split(
        entries: list[dict[str, Any]], weights: Weights
    ) -> tuple[list[tuple[Weights, Split]], str]:
        used: dict[str, int] = {}
        owned: list[tuple[Weights, Split]] = []
        for entry in entries:
            module = entry.get("module")
            own: Weights = {}
            sub = ""
            # Keras operations recorded as layers (docs/pitfalls.md#mask-ops-in-h5)
            # are not in model.layers and
            # hold no weights; they take no place in the naming.
            is_operation = isinstance(module, str) and ".ops." in f"{module}."
            if not is_operation and isinstance(entry.get("class_name"), str):
                base = _snake_case(entry["class_name"])
                if base in used:
                    used[base] += 1
                    base = f"{base}_{used[base]}"
                else:
                    used[base] = 0
                sub = f"{prefix}layers/{base}/"
                own = {p: s for p, s in weights.items() if p.startswith(sub)}
            owned.append((own, _keras_split(sub)))
        return owned, f"{prefix}vars/"

    return split


def _h5_split(depth: int) -> Split:
    """`.h5` groups weights under each top-level layer's name; inside a nested
    model's group, datasets are named by variable path ("inner/dense/kernel"),
    the layer's name being one component."""

    def split(
        entries: list[dict[str, Any]], weights: Weights
    ) -> tuple[list[tuple[Weights, Split]], str]:
        owned: list[tuple[Weights, Split]] = []
        for entry in entries:
            name = _identify(entry)[2]
            if depth == 0:
                own = {p: s for p, s in weights.items() if p.split("/", 1)[0] == name}
            else:
                own = {p: s for p, s in weights.items() if name in p.split("/")[1:-1]}
            owned.append((own, _h5_split(depth + 1)))
        return owned, "top_level_model_weights/"

    return split


def _unknown_if_empty(infos: list[LayerInfo]) -> None:
    """Some weights matched no layer: a layer that matched none may own them."""
    for info in infos:
        if info.params == 0:
            info.params = None
            _unknown_if_empty(info.children)


def _module_found(module: str) -> bool:
    """Whether `module` could be imported here, found without importing it.

    `importlib.util.find_spec("a.b")` would import package `a` to look inside
    it; this looks up each level with the path finder instead, so no code runs.
    """
    if module in sys.modules:
        return True
    parts = module.split(".")
    try:
        spec = importlib.util.find_spec(parts[0])  # top level: nothing to import
        for index in range(1, len(parts)):
            locations = spec.submodule_search_locations if spec else None
            if not locations:
                return False
            name = ".".join(parts[: index + 1])
            spec = PathFinder.find_spec(name, list(locations))
    except (ImportError, ValueError):
        return False
    return spec is not None


def _compile_info(config: dict[str, Any] | None) -> dict[str, Any] | None:
    # An uncompiled model's .keras file holds an empty compile_config.
    if not isinstance(config, dict) or not config:
        return None
    optimizer = config.get("optimizer") or config.get("optimizer_config")
    return {
        "loss": _object_name(config.get("loss")),
        "metrics": _object_name(config.get("metrics")),
        "weighted_metrics": _object_name(config.get("weighted_metrics")),
        "optimizer": _optimizer_info(optimizer),
    }


def _object_name(value: Any) -> Any:
    """A serialized loss, metric or structure of them, by name."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict):
        if "class_name" in value:
            if value["class_name"] == "function" and isinstance(
                value.get("config"), str
            ):
                return value["config"]
            registered = value.get("registered_name")
            return registered if isinstance(registered, str) else value["class_name"]
        return {str(key): _object_name(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_object_name(item) for item in value]
    return str(value)


def _optimizer_info(config: Any) -> dict[str, Any] | None:
    if config is None:
        return None
    if isinstance(config, str):
        return {"class_name": config, "learning_rate": None}
    if not isinstance(config, dict):
        return None
    inner = config.get("config")
    rate = inner.get("learning_rate") if isinstance(inner, dict) else None
    return {
        "class_name": _object_name(config),
        "learning_rate": rate if isinstance(rate, (int, float)) else _object_name(rate),
    }


# ---------------------------------------------------------------------------
# check
# ---------------------------------------------------------------------------


@dataclass
class CheckResult:
    """What `check` found.

    `status` is "ok", "problems" (the round trip lost something) or
    "does_not_reload" (the file reads, but Keras cannot rebuild the model).
    `message` is the round-trip report or the error, as text; `problems` the
    problems by format (`{"load": [...]}` when the file does not reload);
    `reports` what each format's round trip measured, when it passed.
    """

    path: Path
    formats: list[str]
    format: str | None = None
    model: dict[str, str] | None = None
    status: str = "problems"
    message: str = ""
    problems: dict[str, list[str]] = field(default_factory=dict)
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def check_file(
    file: str,
    formats: Sequence[str],
    imports: Sequence[str],
    *,
    fresh_process: bool,
    progress: _Progress,
    started: Callable[[CheckResult], None] | None = None,
) -> CheckResult:
    """Load `file` and round-trip it through `formats` with `assert_roundtrip`.

    `started` is called once the model loaded, before the round trip runs.
    """
    from ._files import load_model
    from ._roundtrip import RoundtripError, assert_roundtrip

    path = Path(file)
    result = CheckResult(path, list(dict.fromkeys(formats)))
    with importable_cwd():
        import_modules(imports)
        contents = _inspect.read_file(path)  # an unreadable file is unusable input
        result.format = contents.format
        progress.step(f"loading {path} ...")
        try:
            model = load_model(path)
        except ModelFileError as err:
            # The file reads and every class is registered, yet Keras cannot
            # rebuild the model from it: that is what `check` is for.
            result.status = "does_not_reload"
            result.problems = {"load": [str(err)]}
            result.message = str(err)
            return result
        result.model = {"name": model.name, "class_name": type(model).__name__}
        progress.step(f"saving and reloading in {', '.join(result.formats)} ...")
        if started is not None:
            started(result)
        try:
            report = assert_roundtrip(
                model,
                formats=result.formats,
                fresh_process=fresh_process,
                using="serializable",
            )
        except RoundtripError as err:
            result.problems = {k: list(v) for k, v in err.problems.items()}
            result.message = str(err)
            return result
        except (ValueError, TypeError) as err:
            message = (
                f"Cannot check {str(path)!r}: expected a model assert_roundtrip "
                f"can save and call. Received: {type(err).__name__}: {err}"
            )
            raise UsageError(message) from err
    result.status = "ok"
    result.message = str(report)
    result.reports = {
        fmt: {
            "file_bytes": entry.file_bytes,
            "save_seconds": entry.save_seconds,
            "load_seconds": entry.load_seconds,
            "checked": list(entry.checked),
        }
        for fmt, entry in report.formats.items()
    }
    return result


# ---------------------------------------------------------------------------
# convert
# ---------------------------------------------------------------------------


@dataclass
class ConvertResult:
    """What `convert` did: `ok` when `target` was written (and verified, if
    `verify`); otherwise `problems` and `message` say why nothing was."""

    source: Path
    target: Path
    target_format: str
    verify: bool
    source_format: str | None = None
    ok: bool = False
    size_bytes: int | None = None
    message: str = ""
    problems: list[str] = field(default_factory=list)


def convert_file(
    source_file: str,
    target_file: str,
    imports: Sequence[str],
    *,
    verify: bool,
    force: bool,
    progress: _Progress,
) -> ConvertResult:
    """Load `source_file` and write it to `target_file`, in the format its
    suffix names; verified unless `verify` is False."""
    source, target = Path(source_file), Path(target_file)
    try:
        target_format = _inspect.format_for_suffix(
            target, "convert to", "Name the output model.keras or model.h5."
        )
    except ValueError as err:
        raise UsageError(str(err)) from err
    if target.exists() and not force:
        message = (
            f"Cannot convert to {str(target)!r}: expected a path that does not "
            "exist yet. Received: an existing file. Pass --force to replace it, "
            "or choose another path."
        )
        raise UsageError(message)
    from ._files import load_model, save_model
    from ._roundtrip import RoundtripError

    result = ConvertResult(source, target, target_format, verify)
    with importable_cwd():
        import_modules(imports)
        result.source_format = _inspect.sniff_format(source)
        progress.step(f"loading {source} ...")
        model = load_model(source)
        verb = "writing and verifying" if verify else "writing"
        progress.step(f"{verb} {target} ...")
        try:
            save_model(model, target, overwrite=force, verify=verify)
        except (RoundtripError, FormatLimitError) as err:
            if isinstance(err, RoundtripError):
                result.problems = [p for items in err.problems.values() for p in items]
            else:
                result.problems = [str(err)]
            result.message = str(err)
            return result
    result.ok = True
    result.size_bytes = target.stat().st_size
    return result


# ---------------------------------------------------------------------------
# --import
# ---------------------------------------------------------------------------


@contextlib.contextmanager
def importable_cwd() -> Iterator[None]:
    """Let `--import` find modules in the current directory, as `python -m` does.

    The console script's `sys.path` starts with its own bin directory, not the
    current one. The entry goes at the end, so it never shadows an installed
    module, and stays for the whole command: a `--fresh-process` child gets
    this `sys.path`.
    """
    cwd = os.getcwd()
    added = cwd not in sys.path and "" not in sys.path
    if added:
        sys.path.append(cwd)
    try:
        yield
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


def import_modules(modules: Sequence[str]) -> None:
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as err:
            message = (
                f"Cannot import module {module!r} named by --import: expected an "
                f"importable module that registers the model's classes. Received: "
                f"{type(err).__name__}: {err}. Check the module name and that "
                "its package is installed or in the current directory."
            )
            raise UsageError(message) from err
