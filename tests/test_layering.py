"""The package's layering (docs/ARCHITECTURE.md) and the absence of import cycles, checked from
the source: every ``import`` of every module, function-local ones included, is an edge.

Why static: a runtime check sees only what one entry point happens to import; a function-local
import that crosses a layer (or closes a cycle) would hide until that function runs.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "sedscale"

#: Each layer must import nothing from the layers listed after it (issue 18, DESIGN.md §2).
FORBIDDEN: dict[str, set[str]] = {
    "catalog": {"sed", "agent", "serve", "campaign", "engines", "pipeline", "fitting", "commands", "report"},
    "sed": {"agent", "serve", "campaign", "engines", "pipeline", "fitting", "commands", "report"},
    "agent": {"serve", "campaign", "engines", "pipeline", "commands", "report"},
    "serve": {"sed", "agent", "campaign", "pipeline", "fitting", "commands", "report"},
    "campaign": {"engines", "pipeline", "commands", "report"},
    "engines": {"sed", "agent", "commands", "report"},
}

#: Top-level modules that belong to a named layer.
MODULE_LAYER = {"pipeline": "pipeline", "driver": "pipeline", "fitting": "fitting", "cli": "commands"}


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) < 2:
        return None
    return MODULE_LAYER.get(parts[1], parts[1])


def _is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> list[str]:
    if node.level == 0:
        base = node.module or ""
    else:
        parts = module.split(".")
        keep = len(parts) - node.level + (1 if is_package else 0)
        base = ".".join(parts[:keep] + ([node.module] if node.module else []))
    return [f"{base}.{a.name}" for a in node.names] + [base]


def imports_of(path: Path) -> tuple[set[str], set[str]]:
    """(all sedscale modules imported, those imported outside ``if TYPE_CHECKING:`` blocks)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    module, is_package = module_name(path), path.name == "__init__.py"
    every: set[str] = set()
    runtime: set[str] = set()

    def visit(node: ast.AST, type_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            child_type_only = type_only or _is_type_checking_block(child)
            names: list[str] = []
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom):
                names = _resolve(module, child, is_package)
            for name in names:
                if name.split(".")[0] == "sedscale":
                    every.add(name)
                    if not child_type_only:
                        runtime.add(name)
            visit(child, child_type_only)

    visit(tree, False)
    return every, runtime


def _graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    known = set(files)

    def to_modules(names: set[str], me: str) -> set[str]:
        out = set()
        for name in names:
            while name and name not in known:  # `from pkg import name` may name an attribute
                name = name.rpartition(".")[0]
            if name and name != me:
                out.add(name)
        return out

    every, runtime = {}, {}
    for mod, path in files.items():
        e, r = imports_of(path)
        every[mod], runtime[mod] = to_modules(e, mod), to_modules(r, mod)
    return every, runtime


def test_every_layer_imports_only_the_layers_below_it() -> None:
    every, _ = _graph()
    bad = []
    for mod, targets in sorted(every.items()):
        src = layer_of(mod)
        for target in sorted(targets):
            if src in FORBIDDEN and layer_of(target) in FORBIDDEN[src]:
                bad.append(f"{mod} imports {target}")
    assert not bad, "layering violations:\n" + "\n".join(bad)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(10_000)

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def _without_package_inits(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """A package's ``__init__`` re-exporting its own modules is not a cycle between modules: drop
    the edges from a package to its own submodules (a submodule importing its package's
    ``__init__`` still counts)."""
    out = {}
    for mod, targets in graph.items():
        out[mod] = {t for t in targets if not t.startswith(mod + ".")}
    return out


def test_no_import_cycles_between_modules() -> None:
    _, runtime = _graph()
    cycles = _cycles(_without_package_inits(runtime))
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_agent_layer_loads_no_engine_scheduler_campaign_or_server() -> None:
    code = (
        "import sys, sedscale.agent, sedscale.agent.loop, sedscale.agent.llm\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('parsl', 'dask', 'distributed', 'dask_jobqueue')"
        " or m.startswith(('sedscale.engines', 'sedscale.campaign', 'sedscale.serve')))\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_checker_sees_a_violation_and_a_cycle() -> None:
    """The checks above could fail: a made-up graph with a forbidden edge and a cycle is caught."""
    graph = {"sedscale.sed.a": {"sedscale.agent.b"}, "sedscale.agent.b": {"sedscale.sed.a"}}
    assert _cycles(graph) == [["sedscale.agent.b", "sedscale.sed.a"]]
    assert layer_of("sedscale.agent.b") in FORBIDDEN["sed"]
