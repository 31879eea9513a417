"""Package boundaries, read from the source with ast (nothing is imported): Ray, MLflow and Optuna each enter
through their adapter modules only, and the modules of ``platform/dtgan`` import each other without cycles.

Every import counts, the function-local ones too (they defer a module, they do not remove the dependency);
``if TYPE_CHECKING:`` blocks do too, so that a cycle cannot hide behind one.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "platform" / "dtgan"
SCRIPTS = [REPO / "experiments", REPO / "benchmarks"]

# third-party library -> the modules allowed to import it (DESIGN: one adapter each)
ADAPTERS = {
    "mlflow": {
        "dtgan.tracking.mlflow.fluent",
        "dtgan.tracking.mlflow.generator_model",
        "dtgan.tracking.mlflow.model",
        "dtgan.tracking.mlflow.reading",
        "dtgan.tracking.mlflow.runs",
        "dtgan.tracking.mlflow_backend",  # the old model-code import path of generators logged before the split
    },
    "ray": {"dtgan.search.ray_tune", "dtgan.training.ray_train"},
    "optuna": {"dtgan.search.ray_tune"},  # through ray.tune.search.optuna
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(node: ast.Import | ast.ImportFrom, path: Path) -> Iterator[str]:
    """The modules one import statement of ``path`` loads: ``from a import b`` is ``a.b`` when that is a module
    of the package, else ``a``."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:  # relative: resolve against this module's package
        name = _module_name(path)
        parts = (name if path.name == "__init__.py" else name.rpartition(".")[0]).split(".")
        base = ".".join([*parts[: len(parts) - node.level + 1], *([base] if base else [])])
    for alias in node.names:
        if f"{base}.{alias.name}" in MODULES:
            yield f"{base}.{alias.name}"
        else:  # a name of a package that loads it lazily (dtgan.tracking's _EXPORTS) comes from its module
            yield _LAZY_EXPORTS.get(base, {}).get(alias.name, base)


def _lazy_exports(path: Path) -> dict[str, str]:
    """A package's ``_EXPORTS = {"name": "module", ...}`` (what its ``__getattr__`` imports on first use)."""
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["_EXPORTS"]:
            return ast.literal_eval(node.value)
    return {}


_LAZY_EXPORTS = {
    name: exports
    for name, path in MODULES.items()
    if path.name == "__init__.py" and (exports := _lazy_exports(path))
}


def _imports(path: Path) -> Iterator[str]:
    """The modules the import statements of ``path`` load, wherever they stand."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield from _resolve(node, path)


def _names(imported: str, library: str) -> bool:
    """``imported`` is ``library``, one of its modules, or another library's module for it (ray.tune.search.optuna)."""
    parts = imported.split(".")
    return parts[0] == library or (parts[0] != "dtgan" and library in parts[1:])


def _library_importers(library: str, files: dict[str, Path]) -> set[str]:
    return {
        name for name, path in files.items() if any(_names(imported, library) for imported in _imports(path))
    }


def _dtgan_edges(name: str) -> set[str]:
    """The modules of the package that ``name`` imports."""
    return {imported for imported in _imports(MODULES[name]) if imported in MODULES and imported != name}


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (as a path that returns to its start), or None."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_parser_sees_the_adapters_imports():
    # a guard that cannot pass vacuously: the known importers are found
    assert {"dtgan.search.ray_tune", "dtgan.training.ray_train"} <= _library_importers("ray", MODULES)
    assert _library_importers("mlflow", MODULES) == ADAPTERS["mlflow"]
    assert "dtgan.training.checkpoint" in _dtgan_edges("dtgan.training.ray_train")
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("library", sorted(ADAPTERS))
def test_each_library_is_imported_by_its_adapter_only(library):
    scripts = {str(p.relative_to(REPO)): p for folder in SCRIPTS for p in sorted(folder.rglob("*.py"))}
    importers = _library_importers(library, {**MODULES, **scripts})
    assert importers <= ADAPTERS[library], (
        f"{library} imported outside its adapter: {importers - ADAPTERS[library]}"
    )


def test_no_import_cycles_in_platform_dtgan():
    graph = {name: _dtgan_edges(name) for name in MODULES}
    cycle = _find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_provenance_is_below_training_and_tracking():
    # pure stdlib: the run folder (training) and the trials (search, tracking) both read it
    assert not {e for e in _dtgan_edges("dtgan.provenance") if e != "dtgan"}
    assert "dtgan.provenance" in _dtgan_edges("dtgan.training.run_dir")
    training = [n for n in MODULES if n.startswith("dtgan.training")]
    assert not [(n, e) for n in training for e in _dtgan_edges(n) if e.startswith("dtgan.tracking")]


# -- function-local imports: only where they keep a heavy library out of a module's import --------------------

# Libraries worth deferring: each costs a noticeable part of a second (or more) at start-up.
HEAVY = {
    "torch",
    "torchvision",
    "ray",
    "mlflow",
    "optuna",
    "timm",
    "lpips",
    "torch_fidelity",
    "matplotlib",
    "pandas",
}
HEAVY |= {"pyarrow", "huggingface_hub", "scipy", "PIL", "numpy", "psutil"}


def _split_imports(path: Path) -> tuple[list[str], list[tuple[int, str]]]:
    """(modules imported at module level, (line, module) of the imports inside a function)."""
    tree = ast.parse(path.read_text(), str(path))
    top: list[str] = []
    local: list[tuple[int, str]] = []

    def walk(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                names = list(_resolve(child, path))
                if in_function:
                    local.extend((child.lineno, name) for name in dict.fromkeys(names))
                else:
                    top.extend(names)
            walk(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))

    walk(tree, False)
    return top, local


_TOP = {name: _split_imports(path)[0] for name, path in MODULES.items()}


def _heavy_loaded(name: str) -> set[str]:
    """The heavy third-party modules (dotted, as imported) that importing ``name`` loads: its module-level
    imports, transitively, and its parent packages'."""
    seen: set[str] = set()
    stack = [name]
    heavy: set[str] = set()
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        if current in MODULES:
            parts = current.split(".")
            stack += _TOP[current] + [".".join(parts[:i]) for i in range(2, len(parts))]
        elif current.split(".")[0] in HEAVY:
            heavy.add(current)
    return heavy


def _needless_local_imports() -> list[str]:
    found = []
    for name, path in sorted(MODULES.items()):
        has = _heavy_loaded(name)
        for line, target in _split_imports(path)[1]:
            if not _heavy_loaded(target) - has:
                found.append(f"{path.relative_to(REPO)}:{line} imports {target} inside a function")
    return found


def test_function_local_imports_only_defer_a_heavy_library():
    # STYLE: dependencies at the top of the module, where a reader sees them; a function-local import is kept
    # only when it keeps torch, Ray, MLflow (...) out of the importing module's start-up (e.g. `dtgan --help`).
    assert _heavy_loaded("dtgan.config") == set() and "torch" in _heavy_loaded("dtgan.models.generator")
    assert _heavy_loaded("dtgan.tracking") == set() and _LAZY_EXPORTS["dtgan.tracking"]["init_tracking"] == (
        "dtgan.tracking.mlflow.runs"
    )  # `from dtgan.tracking import init_tracking` loads MLflow: it counts as importing the adapter
    needless = _needless_local_imports()
    assert not needless, "move these to the module's top:\n" + "\n".join(needless)


def test_the_entry_points_import_without_mlflow_or_ray():
    # what the static rule stands for, measured: a script's error path (bad flag, missing checkpoint) prints its
    # one line before MLflow (about a second, and a warning on stderr) or Ray is ever imported
    entry = (
        "dtgan.cli.main",
        "dtgan.search.runner",
        "dtgan.search.driver",
        "dtgan.search.augmentation",
        "dtgan.tracking.mlflow",
    )
    code = f"import sys; import {', '.join(entry)}; print(sorted({{'mlflow', 'ray'}} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stderr
