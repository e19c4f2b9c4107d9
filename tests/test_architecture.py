"""The package's shape: no import circle between its modules (issue 23).

Every import counts, also one inside a function: a deferred import hides a circle from Python's
loader, not from the reader.
"""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "clusterbench"


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """module -> the package modules it imports (``from . import x`` names the submodule x, not
    the package it sits in)."""
    files = {module_name(p, root): p for p in root.rglob("*.py")}

    def known(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
                targets |= {f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names}
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
        graph[name] = {t for t in map(known, targets) if t and t != name}
    return graph


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as [a, b, ..., a], or None (depth-first search with colours)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_package_has_no_import_circle():
    graph = import_graph()
    assert len(graph) > 40 and sum(map(len, graph.values())) > 100   # the walk saw the package
    assert find_circle(graph) is None, " -> ".join(find_circle(graph))


def test_the_circle_finder_finds_a_planted_circle(tmp_path):
    pkg = tmp_path / "clusterbench"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import thing\n")
    (pkg / "b.py").write_text("def f():\n    from .sub import c\n")            # deferred still counts
    (pkg / "sub" / "__init__.py").write_text("from . import c\n")              # package -> submodule only
    (pkg / "sub" / "c.py").write_text("from .. import a\n")
    graph = import_graph(pkg)
    assert graph["clusterbench.sub"] == {"clusterbench.sub.c"}
    circle = find_circle(graph)
    assert circle and circle[0] == circle[-1] and {"clusterbench.a", "clusterbench.b"} <= set(circle)
    (pkg / "sub" / "c.py").write_text("import numpy\n")
    assert find_circle(import_graph(pkg)) is None


PAPER_METHODS = ("constellationnet", "iciclegcn", "ghdcc", "lnscc", "hilander")


def test_each_paper_method_is_one_folder_with_its_figures():
    """A paper method's model, training, readings and figures live in clusterbench/methods/<name>/;
    nothing method-specific is left at the package root."""
    from clusterbench.methods import METHODS

    for name in PAPER_METHODS:
        folder = ROOT / "methods" / name
        assert (folder / "__init__.py").is_file(), f"{name} is not a folder"
        assert METHODS[name].startswith(f"clusterbench.methods.{name}"), METHODS[name]
    assert not list(ROOT.glob("figures_*.py")), "method figures belong in the method's folder"
    for name in ("lnscc", "ghdcc"):
        assert (ROOT / "methods" / name / "figures.py").is_file()


def test_a_method_folder_exports_the_method_interface():
    from clusterbench.methods import load_method

    for name in PAPER_METHODS[1:]:
        impl = load_method(name)
        assert isinstance(impl.TASK, str) and callable(impl.fit_predict) and hasattr(impl.Config, "model_fields")
