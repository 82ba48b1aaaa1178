"""What the `serializable` command prints: the data `_summary` builds, as text.

Text for people (aligned tables, the layer tree), one JSON document for
`--json` (its schema is in docs/cli.md), and progress lines on stderr when
stderr is a terminal. Nothing here reads a file or loads a model.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from ._summary import CheckResult, ConvertResult


class Progress:
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


def as_json(document: dict[str, Any]) -> str:
    """The `--json` output: one JSON document."""
    return json.dumps(document, indent=2)


# ---------------------------------------------------------------------------
# inspect
# ---------------------------------------------------------------------------


def size(size: int, *, exact: bool = True) -> str:
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


def inspect_text(report: dict[str, Any]) -> str:
    """`inspect`'s text output, from the report `--json` prints."""
    model = report["model"]
    saved = f"Keras {report['keras_version'] or '(version not recorded)'}"
    saved += f", backend {report['backend'] or 'not recorded'}"
    if report["date_saved"]:
        saved += f", on {report['date_saved']}"
    kind = "zip archive" if report["format"] == "keras" else "legacy HDF5"
    lines = [
        report["path"],
        f"  format:      {report['format']} ({kind})",
        f"  size:        {size(report['size_bytes'])}",
        f"  saved with:  {saved}",
        f"  model:       {model['name']!r} ({_class_label(model)})",
        "",
    ]
    lines.extend(_layers(report["layers"], report["total_params"]))
    lines.append("")
    lines.extend(_classes(report["custom_classes"]))
    lines.append("")
    lines.extend(_compile(report["compile"]))
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


def _layers(layers: list[dict[str, Any]], total: int) -> list[str]:
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


def _classes(classes: list[dict[str, Any]]) -> list[str]:
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


def _compile(info: dict[str, Any] | None) -> list[str]:
    if info is None:
        return ["Compile: not compiled (no training configuration saved)"]
    lines = ["Compile:", f"  loss:        {_value(info['loss'])}"]
    lines.append(f"  metrics:     {_value(info['metrics'])}")
    if info["weighted_metrics"]:
        lines.append(f"  weighted:    {_value(info['weighted_metrics'])}")
    optimizer = info["optimizer"]
    if optimizer is None:
        lines.append("  optimizer:   none")
    else:
        rate = optimizer["learning_rate"]
        if isinstance(rate, float):
            rate = f"{rate:.6g}"
        label = str(optimizer["class_name"])
        if rate is not None:
            label += f" (learning_rate={_value(rate)})"
        lines.append(f"  optimizer:   {label}")
    return lines


def _value(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, list):
        if not value:
            return "none"
        return ", ".join(
            f"[{_value(v)}]" if isinstance(v, list) else _value(v) for v in value
        )
    if isinstance(value, dict):
        return "; ".join(f"{key}: {_value(v)}" for key, v in value.items())
    return str(value)


# ---------------------------------------------------------------------------
# check
# ---------------------------------------------------------------------------


def check_json(result: CheckResult) -> dict[str, Any]:
    """`check --json`'s document."""
    return {
        "command": "check",
        "path": str(result.path),
        "format": result.format,
        "model": result.model,
        "formats": result.formats,
        "ok": result.ok,
        "status": result.status,
        "problems": result.problems,
        "reports": result.reports,
    }


def check_started(result: CheckResult) -> str:
    """The line printed once the model loaded, before the round trip runs."""
    return (
        f"Checking {_model_label(result)} from {result.path} in "
        f"{', '.join(result.formats)}..."
    )


def check_text(result: CheckResult) -> str:
    """`check`'s text output once the check ended (after `check_started`)."""
    formats = ", ".join(result.formats)
    if result.status == "does_not_reload":
        return (
            f"FAILED: {result.path} ({result.format}) does not reload.\n"
            f"{result.message}\n"
            "Common causes: a hand-written get_config that forgets an "
            "__init__ argument, or a class changed since the file was saved."
        )
    if not result.ok:
        failed = [fmt for fmt in result.formats if fmt in result.problems]
        where = ", ".join(failed) or "the config"
        return f"{result.message}\nFAILED: problems found in {where}."
    return (
        f"{result.message}\nOK: {_model_label(result)} survives a save/reload "
        f"round trip in {formats}."
    )


def _model_label(result: CheckResult) -> str:
    model = result.model or {}
    return f"'{model.get('name')}' ({model.get('class_name')})"


# ---------------------------------------------------------------------------
# convert
# ---------------------------------------------------------------------------


def convert_json(result: ConvertResult) -> dict[str, Any]:
    """`convert --json`'s document."""
    return {
        "command": "convert",
        "input": str(result.source),
        "input_format": result.source_format,
        "output": str(result.target),
        "output_format": result.target_format,
        "ok": result.ok,
        "written": result.ok,
        "verified": result.ok and result.verify,
        "size_bytes": result.size_bytes,
        "problems": result.problems,
    }


def convert_text(result: ConvertResult) -> str:
    """`convert`'s text output."""
    if not result.ok:
        return f"FAILED: nothing was written to {result.target}.\n{result.message}"
    written = size(result.size_bytes or 0, exact=False)
    verified = (
        "verified: it reloads into the same model"
        if result.verify
        else "not verified (--no-verify)"
    )
    return (
        f"Wrote {result.target} ({result.target_format}, {written}) from "
        f"{result.source} ({result.source_format}); {verified}."
    )
