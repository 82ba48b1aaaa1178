"""The `serializable` command: inspect, check and convert Keras model files.

`inspect` reads only a file's JSON and HDF5 metadata (see `_inspect`): it
never builds the model and never imports a module the file names, so it is
safe on a file from a stranger. `check` and `convert` load the model, so they
import exactly the modules passed with `--import` and nothing else.

Exit codes: 0 success; 1 a problem was found in the model (`check` found a
difference, the file does not reload, `convert` could not write a faithful
copy); 2 the input cannot be used (missing or corrupted file, classes not
registered, bad arguments). When the reader of the output goes away (`... |
head -1`), the command stops quietly with the shell's code for that, 141.

Keras is imported only by the commands that load a model, so `--help`,
`--version` and `inspect` start fast. `--json` output is one JSON document on
stdout; its schema is in docs/cli.md. Progress goes to stderr, and only when
stderr is a terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import json
import math
import os
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from importlib.machinery import PathFinder
from pathlib import Path
from typing import Any

from . import _inspect
from ._errors import (
    FormatLimitError,
    MissingClassError,
    ModelFileError,
    SerializableError,
)

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_UNUSABLE = 2
# What a shell reports for a command stopped by SIGPIPE (128 + 13).
EXIT_BROKEN_PIPE = 141

_SUFFIXES = {".keras": "keras", ".h5": "h5", ".hdf5": "h5"}


class _UsageError(Exception):
    """Input the command cannot use; the message is printed and the exit is 2."""


# ---------------------------------------------------------------------------
# Argument parsing
# ---------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="serializable",
        description=(
            "Inspect, check and convert Keras model files (.keras and .h5). "
            "Exit codes: 0 success, 1 a problem found in the model, 2 unusable "
            "input."
        ),
    )
    parser.add_argument(
        "--version",
        action="version",
        # The distribution and where it is imported from: the unrelated
        # `serializable` package on PyPI shares the import name.
        version=f"%(prog)s {__version__} (keras-serializable, {Path(__file__).parent})",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    inspect = commands.add_parser(
        "inspect",
        help="show what a model file holds, without loading it",
        description=(
            "Show a model file's format, size, the Keras version and backend "
            "that saved it, its layer tree with parameter counts, the custom "
            "classes it needs (and whether each is registered here) and its "
            "compile settings. Only metadata is read: the model is not built "
            "and no module named in the file is imported, so this is safe on "
            "files you do not trust."
        ),
    )
    inspect.add_argument("file", metavar="FILE", help="a .keras or .h5 model file")
    inspect.add_argument(
        "--json", action="store_true", help="print a JSON object instead of text"
    )
    inspect.set_defaults(handler=_inspect_command)

    check = commands.add_parser(
        "check",
        help="load a model and prove it survives a save/reload round trip",
        description=(
            "Load FILE with serializable.load_model, then save and reload it in "
            "each format with serializable.assert_roundtrip and compare class, "
            "configs, weights, outputs, compile and optimizer state. Exit 0 if "
            "nothing was lost, 1 if a problem was found (including a file that "
            "does not reload), 2 if the file cannot be used here."
        ),
    )
    check.add_argument("file", metavar="FILE", help="a .keras or .h5 model file")
    _add_import_option(check)
    check.add_argument(
        "--formats",
        nargs="+",
        choices=("keras", "h5"),
        default=["keras", "h5"],
        metavar="FORMAT",
        help="formats to round-trip through: keras, h5 (default: both)",
    )
    check.add_argument(
        "--json",
        action="store_true",
        help="print the result as a JSON object (schema in the docs) instead of text",
    )
    check.add_argument(
        "--fresh-process",
        action="store_true",
        help=(
            "also reload each file in a new Python process that imports only "
            "the modules the model's classes were registered from"
        ),
    )
    check.set_defaults(handler=_check_command)

    convert = commands.add_parser(
        "convert",
        help="convert a model file between .keras and .h5",
        description=(
            "Load IN with serializable.load_model and write it to OUT with "
            "serializable.save_model, in the format OUT's suffix names (.keras, "
            ".h5 or .hdf5). The new file is reloaded and compared with the "
            "model before it is put in place, unless --no-verify is given."
        ),
    )
    convert.add_argument("input", metavar="IN", help="the model file to read")
    convert.add_argument("output", metavar="OUT", help="the model file to write")
    _add_import_option(convert)
    convert.add_argument(
        "--no-verify",
        action="store_true",
        help="do not reload and compare the new file before writing it",
    )
    convert.add_argument(
        "--force", action="store_true", help="replace OUT if it already exists"
    )
    convert.add_argument(
        "--json",
        action="store_true",
        help="print the result as a JSON object (schema in the docs) instead of text",
    )
    convert.set_defaults(handler=_convert_command)
    return parser


def _add_import_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help=(
            "import MODULE first, so the custom classes it registers can be "
            "loaded; repeat for several modules. The current directory is "
            "searched too."
        ),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `serializable` command line and return its exit code.

    Args:
        argv: The arguments, without the program name. `sys.argv[1:]` when
            None.

    Returns:
        0 on success, 1 when a problem was found in the model, 2 when the
        input cannot be used.

    Example:

    ```python
    from serializable.cli import main

    exit_code = main(["inspect", "model.keras", "--json"])
    ```
    """
    try:
        code = _main(argv)
        sys.stdout.flush()  # a closed pipe shows here for short output
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    return code


def _silence_stdout() -> None:
    """The reader of stdout went away: send what is still buffered nowhere.

    Otherwise Python reports the failed flush at exit ("Exception ignored ...
    BrokenPipeError"), which is noise: the reader stopped on purpose.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (tests)
        pass


def _main(argv: Sequence[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_UNUSABLE
    try:
        code: int = args.handler(args)
    except MissingClassError as err:
        found = (getattr(ref, "module", None) for ref in err.missing)
        modules = sorted({module for module in found if isinstance(module, str)})
        imports = " ".join(f"--import {module}" for module in modules)
        # The modules are the file's claim: importing one runs its code.
        hint = (
            f"The file claims module(s) {', '.join(modules)}. Only if you trust "
            f"the file and they are your modules, on the command line: {imports}"
            if modules
            else "On the command line: pass --import MODULE for each module that "
            "registers them."
        )
        _error(args.command, f"{err}\n{hint}")
        return EXIT_UNUSABLE
    except BrokenPipeError:
        raise  # not the input's fault: main() stops quietly
    except (_UsageError, SerializableError, OSError) as err:
        _error(args.command, str(err))
        return EXIT_UNUSABLE
    except (RecursionError, MemoryError) as err:
        _error(args.command, f"the input is beyond this command's limits ({err!r})")
        return EXIT_UNUSABLE
    except Exception as err:
        # Never a traceback for what a file holds: an error we did not foresee
        # is still reported as unusable input, with what it was.
        _error(
            args.command,
            f"unexpected {type(err).__name__}: {err}. The input cannot be used; "
            "if you believe it is a valid model file, please report this.",
        )
        return EXIT_UNUSABLE
    return code


def _error(command: str, message: str) -> None:
    print(f"serializable {command}: error: {message}", file=sys.stderr)


class _Progress:
    """`[1/3] loading model.h5 ...` on stderr, only when stderr is a terminal."""

    def __init__(self, command: str, steps: int) -> None:
        self.command = command
        self.steps = steps
        self.done = 0
        self.enabled = _isatty(sys.stderr)

    def step(self, what: str) -> None:
        self.done += 1
        if self.enabled:
            line = f"serializable {self.command}: [{self.done}/{self.steps}] {what}"
            print(line, file=sys.stderr, flush=True)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _print_json(document: dict[str, Any]) -> None:
    print(json.dumps(document, indent=2))


# ---------------------------------------------------------------------------
# inspect
# ---------------------------------------------------------------------------


@dataclass
class _LayerInfo:
    """One layer of the tree; `params` is None when it cannot be told."""

    name: str
    class_name: str
    registered_name: str | None
    params: int | None
    children: list[_LayerInfo] = field(default_factory=list)


def _inspect_command(args: argparse.Namespace) -> int:
    contents = _inspect.read_file(args.file)
    with _importable_cwd():  # where `--import` would look for the modules
        report = _describe_file(contents)
    if args.json:
        _print_json(report)
    else:
        print(_render_text(report))
    return EXIT_OK


def _describe_file(contents: _inspect.FileContents) -> dict[str, Any]:
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
) -> tuple[list[_LayerInfo], int]:
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
        return _keras_layers(entries, weights, ""), _count(weights.values())
    weights = dict(contents.weight_shapes)
    return _h5_layers(entries, weights, depth=0), _count(weights.values())


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


def _keras_layers(
    entries: list[dict[str, Any]],
    weights: dict[str, tuple[int, ...]],
    prefix: str,
) -> list[_LayerInfo]:
    used: dict[str, int] = {}
    infos: list[_LayerInfo] = []
    claimed: set[str] = set()
    for entry in entries:
        class_name, registered, name = _identify(entry)
        module = entry.get("module")
        own: dict[str, tuple[int, ...]] = {}
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
        children = _sublayers(entry)
        infos.append(
            _LayerInfo(
                name,
                class_name,
                registered,
                _count(own.values()),
                _keras_layers(children, own, sub) if children is not None else [],
            )
        )
        claimed.update(own)
    unclaimed = [
        p for p in weights if p not in claimed and not p.startswith(f"{prefix}vars/")
    ]
    if unclaimed:
        _unknown_if_empty(infos)
    return infos


def _h5_layers(
    entries: list[dict[str, Any]],
    weights: dict[str, tuple[int, ...]],
    depth: int,
) -> list[_LayerInfo]:
    infos: list[_LayerInfo] = []
    claimed: set[str] = set()
    for entry in entries:
        class_name, registered, name = _identify(entry)
        if depth == 0:
            own = {p: s for p, s in weights.items() if p.split("/", 1)[0] == name}
        else:
            # Inside a nested model's group, datasets are named by variable
            # path ("inner/dense/kernel"); the layer's name is one component.
            own = {p: s for p, s in weights.items() if name in p.split("/")[1:-1]}
        children = _sublayers(entry)
        infos.append(
            _LayerInfo(
                name,
                class_name,
                registered,
                _count(own.values()),
                _h5_layers(children, own, depth + 1) if children is not None else [],
            )
        )
        claimed.update(own)
    unclaimed = [
        p
        for p in weights
        if p not in claimed and not p.startswith("top_level_model_weights/")
    ]
    if unclaimed:
        _unknown_if_empty(infos)
    return infos


def _unknown_if_empty(infos: list[_LayerInfo]) -> None:
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


def _size(size: int, *, exact: bool = True) -> str:
    """`size` in bytes for people: "35.3 KiB (36,187 bytes)", or "35.3 KiB"."""
    if size < 1024:
        return f"{size} bytes"
    value = size / 1024
    unit = "KiB"
    for larger in ("MiB", "GiB"):
        if value < 1024:
            break
        value /= 1024
        unit = larger
    human = f"{value:.1f} {unit}"
    return f"{human} ({size:,} bytes)" if exact else human


def _render_text(report: dict[str, Any]) -> str:
    model = report["model"]
    saved = f"Keras {report['keras_version'] or '(version not recorded)'}"
    saved += f", backend {report['backend'] or 'not recorded'}"
    if report["date_saved"]:
        saved += f", on {report['date_saved']}"
    kind = "zip archive" if report["format"] == "keras" else "legacy HDF5"
    lines = [
        report["path"],
        f"  format:      {report['format']} ({kind})",
        f"  size:        {_size(report['size_bytes'])}",
        f"  saved with:  {saved}",
        f"  model:       {model['name']!r} ({_class_label(model)})",
        "",
    ]
    lines.extend(_render_layers(report["layers"], report["total_params"]))
    lines.append("")
    lines.extend(_render_classes(report["custom_classes"]))
    lines.append("")
    lines.extend(_render_compile(report["compile"]))
    if report.get("keras2"):
        from . import _keras2

        lines.append("")
        lines.extend(_keras2.render(report["keras2"]))
    return "\n".join(lines)


def _class_label(entry: dict[str, Any]) -> str:
    registered = entry["registered_name"]
    if registered and registered != entry["class_name"]:
        return f"{entry['class_name']} [{registered}]"
    return str(entry["class_name"])


def _render_layers(layers: list[dict[str, Any]], total: int) -> list[str]:
    rows: list[tuple[str, str, str]] = []

    def walk(items: list[dict[str, Any]], depth: int) -> None:
        for item in items:
            params = "?" if item["params"] is None else f"{item['params']:,}"
            rows.append(("  " * depth + item["name"], _class_label(item), params))
            walk(item["children"], depth + 1)

    walk(layers, 0)
    if not rows:
        return [
            "Layers: not listed in the config (a subclassed model builds its "
            "layers in code)",
            f"  total params: {total:,}",
        ]
    rows.insert(0, ("name", "class", "params"))
    rows.append(("total", "", f"{total:,}"))
    name_width = max(len(row[0]) for row in rows)
    class_width = max(len(row[1]) for row in rows)
    param_width = max(len(row[2]) for row in rows)
    lines = ["Layers:"]
    for row in rows:
        line = f"  {row[0]:<{name_width}}  {row[1]:<{class_width}}  "
        lines.append((line + f"{row[2]:>{param_width}}").rstrip())
    return lines


def _render_classes(classes: list[dict[str, Any]]) -> list[str]:
    if not classes:
        return ["Custom classes: none (only Keras built-ins)"]
    lines = [f"Custom classes: {len(classes)}"]
    width = max(len(item["registered_name"]) for item in classes)
    for item in classes:
        where = f"module {item['module']}" if item["module"] else "module not recorded"
        if item["importable"]:
            status = "registered here"
        elif item["module"] and item["module_found"]:
            status = (
                "NOT registered here (the file claims module "
                f"{item['module']}, which can be imported here; pass --import "
                f"{item['module']} to check or convert only if you trust the file)"
            )
        elif item["module"]:
            status = "NOT registered here (its module cannot be found here)"
        else:
            status = "NOT registered here"
        lines.append(
            f"  {item['registered_name']:<{width}}  class {item['class_name']}, "
            f"{where}: {status}"
        )
    return lines


def _render_compile(info: dict[str, Any] | None) -> list[str]:
    if info is None:
        return ["Compile: not compiled (no training configuration saved)"]
    lines = ["Compile:", f"  loss:        {_render_value(info['loss'])}"]
    lines.append(f"  metrics:     {_render_value(info['metrics'])}")
    if info["weighted_metrics"]:
        lines.append(f"  weighted:    {_render_value(info['weighted_metrics'])}")
    optimizer = info["optimizer"]
    if optimizer is None:
        lines.append("  optimizer:   none")
    else:
        rate = optimizer["learning_rate"]
        if isinstance(rate, float):
            rate = f"{rate:.6g}"
        label = str(optimizer["class_name"])
        if rate is not None:
            label += f" (learning_rate={_render_value(rate)})"
        lines.append(f"  optimizer:   {label}")
    return lines


def _render_value(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, list):
        if not value:
            return "none"
        return ", ".join(
            f"[{_render_value(v)}]" if isinstance(v, list) else _render_value(v)
            for v in value
        )
    if isinstance(value, dict):
        return "; ".join(f"{key}: {_render_value(v)}" for key, v in value.items())
    return str(value)


# ---------------------------------------------------------------------------
# check
# ---------------------------------------------------------------------------


def _check_command(args: argparse.Namespace) -> int:
    from ._files import load_model
    from ._roundtrip import RoundtripError, assert_roundtrip

    path = Path(args.file)
    formats = list(dict.fromkeys(args.formats))
    progress = _Progress("check", 2)
    result: dict[str, Any] = {
        "command": "check",
        "path": str(path),
        "format": None,
        "model": None,
        "formats": formats,
        "ok": False,
        "status": "problems",
        "problems": {},
        "reports": {},
    }
    with _importable_cwd():
        _import_modules(args.imports)
        contents = _inspect.read_file(path)  # an unreadable file is unusable input
        result["format"] = contents.format
        progress.step(f"loading {path} ...")
        try:
            model = load_model(path)
        except ModelFileError as err:
            # The file reads and every class is registered, yet Keras cannot
            # rebuild the model from it: that is what `check` is for.
            if args.json:
                result["status"] = "does_not_reload"
                result["problems"] = {"load": [str(err)]}
                _print_json(result)
                return EXIT_PROBLEM
            print(f"FAILED: {path} ({contents.format}) does not reload.\n{err}")
            print(
                "Common causes: a hand-written get_config that forgets an "
                "__init__ argument, or a class changed since the file was saved."
            )
            return EXIT_PROBLEM
        label = f"'{model.name}' ({type(model).__name__})"
        result["model"] = {"name": model.name, "class_name": type(model).__name__}
        progress.step(f"saving and reloading in {', '.join(formats)} ...")
        if not args.json:
            print(f"Checking {label} from {path} in {', '.join(formats)}...")
        try:
            report = assert_roundtrip(
                model,
                formats=formats,
                fresh_process=args.fresh_process,
                using="serializable",
            )
        except RoundtripError as err:
            if args.json:
                result["problems"] = {k: list(v) for k, v in err.problems.items()}
                _print_json(result)
                return EXIT_PROBLEM
            print(str(err))
            failed = [fmt for fmt in formats if fmt in err.problems]
            print(f"FAILED: problems found in {', '.join(failed) or 'the config'}.")
            return EXIT_PROBLEM
        except (ValueError, TypeError) as err:
            message = (
                f"Cannot check {str(path)!r}: expected a model assert_roundtrip "
                f"can save and call. Received: {type(err).__name__}: {err}"
            )
            raise _UsageError(message) from err
    if args.json:
        result.update(ok=True, status="ok")
        result["reports"] = {
            fmt: {
                "file_bytes": entry.file_bytes,
                "save_seconds": entry.save_seconds,
                "load_seconds": entry.load_seconds,
                "checked": list(entry.checked),
            }
            for fmt, entry in report.formats.items()
        }
        _print_json(result)
        return EXIT_OK
    print(str(report))
    print(f"OK: {label} survives a save/reload round trip in {', '.join(formats)}.")
    return EXIT_OK


# ---------------------------------------------------------------------------
# convert
# ---------------------------------------------------------------------------


def _convert_command(args: argparse.Namespace) -> int:
    from ._files import load_model, save_model
    from ._roundtrip import RoundtripError

    source, target = Path(args.input), Path(args.output)
    target_format = _SUFFIXES.get(target.suffix.lower())
    if target_format is None:
        message = (
            f"Cannot convert to {str(target)!r}: expected a path ending in .keras, "
            f".h5 or .hdf5, which chooses the format. Received: suffix "
            f"{target.suffix or '(none)'!r}. Name the output model.keras or "
            "model.h5."
        )
        raise _UsageError(message)
    if target.exists() and not args.force:
        message = (
            f"Cannot convert to {str(target)!r}: expected a path that does not "
            "exist yet. Received: an existing file. Pass --force to replace it, "
            "or choose another path."
        )
        raise _UsageError(message)
    progress = _Progress("convert", 2)
    result: dict[str, Any] = {
        "command": "convert",
        "input": str(source),
        "input_format": None,
        "output": str(target),
        "output_format": target_format,
        "ok": False,
        "written": False,
        "verified": False,
        "size_bytes": None,
        "problems": [],
    }
    with _importable_cwd():
        _import_modules(args.imports)
        source_format = _inspect.sniff_format(source)
        result["input_format"] = source_format
        progress.step(f"loading {source} ...")
        model = load_model(source)
        verb = "writing" if args.no_verify else "writing and verifying"
        progress.step(f"{verb} {target} ...")
        try:
            save_model(model, target, overwrite=args.force, verify=not args.no_verify)
        except (RoundtripError, FormatLimitError) as err:
            if args.json:
                if isinstance(err, RoundtripError):
                    found = [p for items in err.problems.values() for p in items]
                else:
                    found = [str(err)]
                result["problems"] = found
                _print_json(result)
                return EXIT_PROBLEM
            print(f"FAILED: nothing was written to {target}.\n{err}")
            return EXIT_PROBLEM
    if args.json:
        result.update(
            ok=True,
            written=True,
            verified=not args.no_verify,
            size_bytes=target.stat().st_size,
        )
        _print_json(result)
        return EXIT_OK
    written = _size(target.stat().st_size, exact=False)
    verified = (
        "not verified (--no-verify)"
        if args.no_verify
        else "verified: it reloads into the same model"
    )
    print(
        f"Wrote {target} ({target_format}, {written}) from {source} "
        f"({source_format}); {verified}."
    )
    return EXIT_OK


# ---------------------------------------------------------------------------
# --import
# ---------------------------------------------------------------------------


@contextlib.contextmanager
def _importable_cwd() -> Iterator[None]:
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


def _import_modules(modules: Sequence[str]) -> None:
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
            raise _UsageError(message) from err
