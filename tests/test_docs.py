"""The runnable examples in docs/*.md run and print what the docs say they print.

A fenced ```python block whose first line is `# doctest: run` is an example.
In README.md, which users read on the package index, every ```python block is
an example unless the line before it is `<!-- doctest: skip ... -->`.
Each one runs in a fresh module of its own (a unique `__name__`, registered in
`sys.modules` while it runs, as an imported module would be) inside its own
temporary directory, so the files it saves never meet another example's. An
example directly followed by an ```output block must print exactly that text,
after hex addresses are replaced by `0x...` and the example's module name by
`__main__` (what the reader sees when running it as a script).
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
import sys
import types
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
MARKER = "# doctest: run"
SKIP = "<!-- doctest: skip"
_FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)
_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


@dataclass(frozen=True)
class Example:
    """One runnable block: where it is, its code, and the output it promises."""

    path: Path
    line: int
    source: str
    output: str | None
    module: str

    @property
    def id(self) -> str:
        return f"{self.path.name}:{self.line}"


def _examples_in(path: Path, every_block: bool = False) -> list[Example]:
    text = path.read_text(encoding="utf-8")
    fences = list(_FENCE.finditer(text))
    stem = re.sub(r"\W", "_", path.stem)
    examples = []
    for index, fence in enumerate(fences):
        body = fence["body"]
        if fence["info"].strip() != "python":
            continue
        if every_block:
            before = text[: fence.start()].rstrip().rsplit("\n", 1)[-1]
            if before.startswith(SKIP):
                continue
        elif not body.startswith(MARKER):
            continue
        output = None
        following = fences[index + 1] if index + 1 < len(fences) else None
        if (
            following is not None
            and following["info"].strip() == "output"
            and not text[fence.end() : following.start()].strip()
        ):
            output = following["body"]
        line = text.count("\n", 0, fence.start("body")) + 1
        module = f"docs_{stem}_{len(examples) + 1}"
        examples.append(Example(path, line, body, output, module))
    return examples


EXAMPLES = [ex for path in sorted(DOCS.glob("*.md")) for ex in _examples_in(path)]
EXAMPLES += _examples_in(README, every_block=True)


def _normalize(text: str, module: str) -> str:
    text = _ADDRESS.sub("0x...", text.replace(module, "__main__"))
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def _keyword(keywords: list[ast.keyword], arg: str) -> str | None:
    for keyword in keywords:
        if (
            keyword.arg == arg
            and isinstance(keyword.value, ast.Constant)
            and isinstance(keyword.value.value, str)
        ):
            return keyword.value.value
    return None


def _registered_names(tree: ast.Module) -> set[str]:
    """The `"package>name"` each top-level definition or call registers."""
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            calls = [d for d in node.decorator_list if isinstance(d, ast.Call)]
            keyword_lists = [call.keywords for call in calls]
            if isinstance(node, ast.ClassDef):
                keyword_lists.append(node.keywords)
            for keywords in keyword_lists:
                package = _keyword(keywords, "package")
                if package is not None:
                    name = _keyword(keywords, "name") or node.name
                    names.add(f"{package}>{name}")
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            # register_keras_serializable(package=...)(SomeClass)
            outer = node.value
            inner = outer.func
            if (
                isinstance(inner, ast.Call)
                and outer.args
                and isinstance(outer.args[0], ast.Name)
            ):
                package = _keyword(inner.keywords, "package")
                if package is not None:
                    name = _keyword(inner.keywords, "name") or outer.args[0].id
                    names.add(f"{package}>{name}")
    return names


def _model_class_names(tree: ast.Module) -> set[str]:
    """Top-level classes that derive from a `...Model` base."""
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        and any(ast.unparse(base).endswith("Model") for base in node.bases)
    }


class TestDocExamples:
    @pytest.mark.parametrize("example", EXAMPLES, ids=lambda ex: ex.id)
    def test_example_runs(
        self,
        example: Example,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """The example runs to the end and prints the output the docs show."""
        monkeypatch.chdir(tmp_path)
        module = types.ModuleType(example.module)
        module.__file__ = str(tmp_path / f"{example.module}.py")
        monkeypatch.setitem(sys.modules, example.module, module)
        # Pad with blank lines so tracebacks point at the line in the .md file.
        source = "\n" * (example.line - 1) + example.source
        code = compile(source, str(example.path), "exec")
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed), warnings.catch_warnings():
            # pyproject.toml ignores this one for the suite's own models; an
            # example must not teach code that numpy has deprecated (on torch,
            # `tensor * ndarray` in `call` goes through __array_wrap__).
            warnings.filterwarnings(
                "error", message="__array_wrap__", category=DeprecationWarning
            )
            exec(code, module.__dict__)
        if example.output is not None:
            actual = _normalize(printed.getvalue(), example.module)
            assert actual == _normalize(example.output, example.module)


class TestDocExamplesStayApart:
    def test_there_are_examples(self) -> None:
        """The pages that teach code (getting started, config, errors) have runnable examples."""
        pages = {ex.path.name for ex in EXAMPLES}
        assert {"getting-started.md", "config.md", "errors.md"} <= pages

    def test_registered_names_are_not_shared(self) -> None:
        """No two examples register the same name, which would raise RegistrationError."""
        owners = Counter(
            name for ex in EXAMPLES for name in _registered_names(ast.parse(ex.source))
        )
        assert [name for name, n in owners.items() if n > 1] == []

    def test_model_class_names_are_not_shared(self) -> None:
        """No two examples define a model class of the same name (`.h5` finds models by it)."""
        names = Counter(
            name for ex in EXAMPLES for name in _model_class_names(ast.parse(ex.source))
        )
        assert [name for name, n in names.items() if n > 1] == []

    def test_the_checks_see_registrations(self) -> None:
        """The name checks find every way the docs register a class or function."""
        tree = ast.parse(
            "@register(package='a', name='N')\ndef f(): ...\n"
            "class C(SerializableModel, package='b'): ...\n"
            "register_keras_serializable(package='c')(Gate)\n"
        )
        assert _registered_names(tree) == {"a>N", "b>C", "c>Gate"}
        assert _model_class_names(tree) == {"C"}


class TestReadmeOnThePackageIndex:
    """The README is also the package index's project page, where relative
    links point nowhere."""

    LINK = re.compile(r"\]\(([^)\s]+)\)|\b(?:href|src)=\"([^\"]+)\"")

    def test_readme_links_are_absolute(self) -> None:
        """Every link and image in README.md is an absolute https URL."""
        text = README.read_text(encoding="utf-8")
        targets = [a or b for a, b in self.LINK.findall(text)]
        assert targets, "the link pattern found no link at all"
        assert [t for t in targets if not t.startswith("https://")] == []

    def test_the_link_check_sees_relative_links(self) -> None:
        """The pattern finds markdown links and HTML attributes alike."""
        found = self.LINK.findall('[a](docs/x.md) <img src="logo.png"> [b](#c)')
        assert [a or b for a, b in found] == ["docs/x.md", "logo.png", "#c"]

    def test_readme_examples_are_collected(self) -> None:
        """The README's runnable examples are among the doc examples."""
        assert len([ex for ex in EXAMPLES if ex.path == README]) >= 3


class TestPitfallPage:
    def test_anchors_match_the_library(self) -> None:
        """docs/pitfalls.md has one section per pitfall, in order, with the anchors
        that the library's messages link to."""
        from serializable import _errors

        text = (DOCS / "pitfalls.md").read_text(encoding="utf-8")
        anchors = re.findall(r"^## .*\{#([\w-]+)\}\s*$", text, re.M)
        assert tuple(anchors) == _errors.PITFALL_ANCHORS

    def test_no_bare_pitfall_ids_in_the_library(self) -> None:
        """Messages and docstrings link to a pitfall's section, never cite its id."""
        src = ROOT / "src"
        cited = [
            f"{path.relative_to(src)}:{number}"
            for path in sorted(src.rglob("*.py"))
            for number, line in enumerate(path.read_text("utf-8").splitlines(), 1)
            if re.search(r"\bP\d{1,2}\b", line)
        ]
        assert cited == []


class TestApiReference:
    def test_public_names_have_docstrings(self) -> None:
        """Everything the API reference lists has a docstring of its own."""
        import serializable
        import serializable.ctc
        import serializable.testing

        missing = [
            f"{module.__name__}.{name}"
            for module in (serializable, serializable.ctc, serializable.testing)
            for name in module.__all__
            if name != "__version__" and not getattr(module, name).__doc__
        ]
        assert missing == []


class TestLinksFromTheLibrary:
    CALL = re.compile(r"docs_url\(\s*['\"]([\w-]+)['\"](?:\s*,\s*['\"]([\w-]+)['\"])?")

    @staticmethod
    def _anchors(page: Path) -> set[str]:
        """Explicit `{#anchor}`s and the slugs mkdocs gives the other headings."""
        anchors = set()
        for heading in re.findall(r"^#+ (.*)$", page.read_text("utf-8"), re.M):
            explicit = re.search(r"\{#([\w-]+)\}\s*$", heading)
            if explicit:
                anchors.add(explicit.group(1))
            else:
                slug = re.sub(r"[^\w\s-]", "", heading).strip().lower()
                anchors.add(re.sub(r"[-\s]+", "-", slug))
        return anchors

    def test_every_link_in_the_library_has_its_page_and_anchor(self) -> None:
        """Each `docs_url(page, anchor)` in src names a docs page and a heading on it."""
        calls = [
            (page, anchor)
            for path in sorted((ROOT / "src").rglob("*.py"))
            for page, anchor in self.CALL.findall(path.read_text("utf-8"))
        ]
        assert calls, "no docs_url call found: the pattern is stale"
        broken = [
            (page, anchor)
            for page, anchor in calls
            if not (DOCS / f"{page}.md").is_file()
            or (anchor and anchor not in self._anchors(DOCS / f"{page}.md"))
        ]
        assert broken == []
