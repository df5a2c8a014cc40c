"""The package's architecture as tests: each layer imports only the layers below it, the
top level holds only the entry points, and modules and functions stay short."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import automl

PACKAGE = Path(automl.__file__).resolve().parent

#: The layers, lowest first: a module may import its own layer and those before it.
LAYERS = ("settings", "records", "data", "models", "tasks", "refit", "evaluation", "report",
          "search", "serve", "cli")
#: What the package root may import: ``automl.load_model`` registers the custom layers.
ROOT_LAYER = "models"
TOP_LEVEL = {"__init__.py", "__main__.py", "cli.py"}
MAX_FILE_LINES = 300
MAX_FUNCTION_LINES = 60
#: Functions allowed past MAX_FUNCTION_LINES, each with the reason.
LONG_FUNCTIONS: dict[str, str] = {}


def layer_of(module: str) -> str:
    """The layer of a dotted module name under ``automl`` (``automl.search.study`` -> search)."""
    parts = [part for part in module.split(".") if part != "__init__"]
    if parts[0] != "automl":
        raise ValueError(f"not an automl module: {module}")
    if len(parts) == 1:
        return ROOT_LAYER
    return parts[1].removesuffix(".py")


def module_name(path: Path, package: Path) -> str:
    """The dotted name of the module at ``path`` (a package's ``__init__.py``: the package)."""
    parts = path.relative_to(package).with_suffix("").parts
    return ".".join(("automl", *(parts[:-1] if parts[-1] == "__init__" else parts)))


def imported_modules(path: Path, package: Path) -> list[tuple[int, str]]:
    """Every ``automl`` module that ``path`` imports, at any depth (function-level imports
    count: a lazy import is still a dependency), with its line."""
    module = module_name(path, package)
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "automl"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: len(module.split(".")) - node.level + is_package]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            if name.split(".")[0] != "automl":
                continue
            if name == "automl":  # `from automl import x`: x is the module imported
                found += [(node.lineno, f"automl.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, name))
    return found


def upward_imports(package: Path) -> list[str]:
    """``file:line imports module`` for each import of a layer above the file's own."""
    rank = {name: i for i, name in enumerate(LAYERS)}
    problems = []
    for path in sorted(package.rglob("*.py")):
        own = layer_of(module_name(path, package))
        for line, name in imported_modules(path, package):
            target = layer_of(name)
            if target in rank and rank[target] > rank[own]:
                problems.append(f"{path.relative_to(package)}:{line} ({own}) imports {name} ({target})")
    return problems


def test_no_module_imports_a_layer_above_its_own():
    assert upward_imports(PACKAGE) == []


def test_the_layer_check_finds_an_upward_import(tmp_path):
    """The check itself: an evaluation module that imports the report layer is flagged,
    lazily inside a function too; imports of lower layers are not."""
    for folder in ("evaluation", "report", "records"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "__init__.py").write_text("")
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "records" / "io.py").write_text("")
    (tmp_path / "report" / "pages.py").write_text("from automl.records import io\n")
    (tmp_path / "evaluation" / "score.py").write_text(
        "from automl import records\n\n\ndef f():\n    from automl.report import pages\n")
    assert upward_imports(tmp_path) == ["evaluation/score.py:5 (evaluation) imports automl.report (report)"]


def test_every_layer_is_a_folder_and_the_top_level_holds_only_entry_points():
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"} == \
        set(LAYERS) - {"cli"}
    assert {p.name for p in PACKAGE.iterdir() if p.is_file()} <= TOP_LEVEL


def test_modules_and_functions_stay_short():
    long_files, long_functions = [], []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        name = path.relative_to(PACKAGE).as_posix()
        if len(text.splitlines()) > MAX_FILE_LINES:
            long_files.append(f"{name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                start = node.decorator_list[0].lineno if node.decorator_list else node.lineno
                qualified = f"{name}:{node.name}"
                if node.end_lineno - start + 1 > MAX_FUNCTION_LINES and qualified not in LONG_FUNCTIONS:
                    long_functions.append(f"{qualified}: {node.end_lineno - start + 1} lines")
    assert long_files == [] and long_functions == []


@pytest.mark.parametrize("word", ["session", "issue"])
def test_the_code_speaks_of_the_toolkit_not_its_history(word):
    """Comments and docstrings say why the code is as it is; what was measured, and when,
    belongs in the reports (a TensorFlow or pytest session is a technical use)."""
    import re

    pattern = re.compile(rf"\b{word} [0-9]", re.IGNORECASE)
    roots = [PACKAGE, PACKAGE.parent / "benchmarks", PACKAGE.parent / "tests"]
    hits = [f"{p}:{i}" for root in roots for p in sorted(root.rglob("*.py"))
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert hits == []


def test_the_code_cites_no_run_or_study_id():
    """A run id or a dated figure in a comment ages the day it is written."""
    import re

    pattern = re.compile(r"\b(binary|multiclass|autoencoder)-(study-[0-9a-f]{8}|20[0-9]{6}-)")
    hits = [f"{p}:{i}" for p in sorted(PACKAGE.rglob("*.py"))
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert hits == []
