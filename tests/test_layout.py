"""Keras internals stay behind `serializable._keras_compat`.

Every module in `src/` is parsed (not imported). Outside `_keras_compat.py` a
module may not import `keras.src` (nor name it in code it runs, such as the
fresh-process child), nor read or write a private attribute (`obj._name`,
`getattr(obj, "_name")`) unless `_name` is one of the library's own names. A
new Keras internal goes into `_keras_compat.py`, documented with the Keras
versions checked and a fallback.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
COMPAT = SRC / "serializable" / "_keras_compat.py"
MODULES = sorted(p for p in SRC.rglob("*.py") if p != COMPAT)
KERAS_SRC = re.compile(r"\bkeras\.src\b")
ATTRIBUTE_FUNCTIONS = {"getattr", "hasattr", "setattr", "delattr"}

# Private-looking names that are not Keras's: markers the library sets on
# functions it creates, and the public API of Python's named tuples.
ALLOWED = {"_serializable_guard", "_serializable_completes", "_fields", "_asdict"}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                found.add(id(value))
    return found


def _own_private_names() -> set[str]:
    """Private attribute names the library defines on its own objects: methods
    and class variables of its classes, attributes it assigns on `self`/`cls`."""
    names = set(ALLOWED)
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        names.add(item.name)
                    elif isinstance(item, (ast.Assign, ast.AnnAssign)):
                        targets = getattr(
                            item, "targets", [getattr(item, "target", None)]
                        )
                        names.update(t.id for t in targets if isinstance(t, ast.Name))
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.ctx, ast.Store)
                and isinstance(node.value, ast.Name)
                and node.value.id in {"self", "cls"}
            ):
                names.add(node.attr)
    return {name for name in names if _private(name)}


def _own_modules(tree: ast.AST) -> set[str]:
    """Names a module binds to the library's own modules (`from . import _h5`)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (
            node.level > 0 or (node.module or "").startswith("serializable")
        ):
            names.update(alias.asname or alias.name for alias in node.names)
    return names


def violations(path: Path, own: set[str]) -> list[str]:
    """What in `path` reaches Keras internals, as `file:line: what`."""
    tree = ast.parse(path.read_text(), str(path))
    docstrings = _docstrings(tree)
    modules = _own_modules(tree)
    where = path.name if SRC not in path.parents else path.relative_to(SRC)
    found: list[str] = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            for alias in node.names:
                if KERAS_SRC.match(alias.name):
                    found.append(f"{where}:{line}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            imported = [f"{module}.{alias.name}" for alias in node.names]
            if any(KERAS_SRC.match(name) for name in [module, *imported]):
                found.append(f"{where}:{line}: from {module} import ...")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings and KERAS_SRC.search(node.value):
                found.append(f"{where}:{line}: string naming keras.src")
        elif isinstance(node, ast.Attribute):
            ours = isinstance(node.value, ast.Name) and node.value.id in modules
            if _private(node.attr) and not ours and node.attr not in own:
                found.append(f"{where}:{line}: private attribute .{node.attr}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ATTRIBUTE_FUNCTIONS
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            name = node.args[1].value
            if _private(name) and name not in own:
                found.append(f"{where}:{line}: {node.func.id}(..., {name!r})")
    return found


def test_modules_are_found():
    names = {p.name for p in MODULES}
    assert {"_h5.py", "_codec.py", "cli.py", "__init__.py"} <= names
    assert COMPAT.exists()


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_keras_internals_only_in_compat(path):
    """No module but `_keras_compat.py` uses `keras.src` or private Keras
    attributes; move the use there, with the versions checked and a fallback."""
    assert violations(path, _own_private_names()) == []


def test_the_check_catches_each_kind(tmp_path):
    """The check itself flags every form of reaching into Keras."""
    module = tmp_path / "probe.py"
    module.write_text(
        "import keras.src.saving\n"
        "from keras.src.models import functional\n"
        "from keras import src\n"
        "from . import _codec\n"
        "CHILD = 'from keras.src import layers'\n"
        "def f(model):\n"
        "    _codec._plain(model)\n"
        "    model._layers.append(model._flatten_layers())\n"
        "    return getattr(model, '_outputs_struct', None)\n"
    )
    found = violations(module, _own_private_names())
    assert len(found) == 7, found
