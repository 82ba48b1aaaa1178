"""One walk over saved configs, for every question asked of their nesting.

A saved config is JSON-like: dicts, lists (tuples in a config Keras has not
written out yet) and scalars. A serialized object inside it is a dict with a
string `"class_name"` (`.keras` style adds `"module"` and `"registered_name"`;
the legacy `.h5` style has neither). Everything that looks for names,
classes or depth in a config walks it here, without recursion, so a config
nested as deep as a file allows (`_guard.MAX_JSON_DEPTH`) costs no stack.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def walk_depths(config: Any) -> Iterator[tuple[Any, int]]:
    """Every value in `config` with its depth (`config` itself is at 1),
    parents before their children, in document order."""
    stack: list[tuple[Any, int]] = [(config, 1)]
    while stack:
        item, depth = stack.pop()
        yield item, depth
        if isinstance(item, dict):
            children: Any = list(item.values())
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        stack.extend((child, depth + 1) for child in reversed(children))


def walk(config: Any) -> Iterator[Any]:
    """Every value in `config`, parents before their children, in document order."""
    for item, _ in walk_depths(config):
        yield item


def objects(config: Any) -> Iterator[dict[str, Any]]:
    """Every serialized object in `config` (a dict with a string
    `"class_name"`), outer before inner, in document order."""
    for item in walk(config):
        if isinstance(item, dict) and isinstance(item.get("class_name"), str):
            yield item


def class_names(config: Any, *, with_config: bool = False) -> set[str]:
    """The class names of the objects in `config`; with `with_config`, only of
    those whose `"config"` is a dict (layers and other classes, not the
    `{"class_name": "function", "config": "relu"}` of a function)."""
    return {
        obj["class_name"]
        for obj in objects(config)
        if not with_config or isinstance(obj.get("config"), dict)
    }
