"""The one walk over saved configs (`_configwalk`) that every name, class and
depth question about a config is answered with."""

from __future__ import annotations

from serializable import _configwalk

CONFIG = {
    "class_name": "Functional",
    "config": {
        "layers": [
            {
                "class_name": "Dense",
                "config": {"activation": {"class_name": "function", "config": "relu"}},
            },
            {"class_name": "my>Scale", "config": {"factor": 2.0}},
        ],
    },
    "registered_name": "Functional",
}


def test_walk_is_parents_first_in_document_order():
    strings = [item for item in _configwalk.walk(CONFIG) if isinstance(item, str)]
    assert strings == [
        "Functional",
        "Dense",
        "function",
        "relu",
        "my>Scale",
        "Functional",
    ]


def test_depths_count_from_one():
    depths = dict(
        (item, depth)
        for item, depth in _configwalk.walk_depths(CONFIG)
        if isinstance(item, str)
    )
    assert depths["relu"] == 7
    assert depths["my>Scale"] == 5
    assert depths["Functional"] == 2


def test_objects_and_class_names():
    names = [obj["class_name"] for obj in _configwalk.objects(CONFIG)]
    assert names == ["Functional", "Dense", "function", "my>Scale"]
    assert _configwalk.class_names(CONFIG) == set(names)
    # with_config: classes, not a function named by a string
    assert _configwalk.class_names(CONFIG, with_config=True) == {
        "Functional",
        "Dense",
        "my>Scale",
    }


def test_a_deep_config_costs_no_stack():
    """A file may nest far past Python's recursion limit; the walk must not
    recurse."""
    deep: list = ["bottom"]
    for _ in range(50_000):
        deep = [deep]
    *_, (last, depth) = _configwalk.walk_depths(deep)
    assert (last, depth) == ("bottom", 50_002)
