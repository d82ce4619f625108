"""lit_gan's import graph: no circles, and no import that runs back up a layer. Every import
counts, also those inside functions and under TYPE_CHECKING."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lit_gan"

LAYERS = [
    # generic helpers and self-contained parts
    ["util", "errors", "images", "hardware", "folders", "progress", "trust", "checkpoint_io", "collective", "augment", "losses", "optim"],
    ["nets", "objective", "data", "self_conditioning"],  # networks; what the loop optimizes; data modules; G told a cluster
    ["terms"],  # the objective's regularizers and extras
    ["models"],  # the loop (GAN), its variants and contracts
    ["metrics", "distributed"],
    ["tracking", "callbacks"],
    ["generate", "export", "demo", "cli", "__main__", "__init__"],
]
"""Top-level modules and packages of lit_gan, lowest first: each may import its own layer and those below."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """lit_gan module -> the lit_gan modules it imports (a parent package, imported implicitly by
    every module inside it, is not counted as an edge)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                wanted = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                wanted = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module for a in node.names]
            else:
                continue
            for target in wanted:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target.startswith("lit_gan") and target != name and not name.startswith(target + "."):
                    targets.add(target)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                found.append(sorted([v, *component]))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else "__init__"
    return next(i for i, names in enumerate(LAYERS) if top in names)


def test_every_module_has_a_layer():
    tops = {m.split(".")[1] if "." in m else "__init__" for m in import_graph()}
    assert tops <= {name for names in LAYERS for name in names}, tops - {name for names in LAYERS for name in names}


def test_no_import_circle():
    assert cycles(import_graph()) == []


def test_no_import_runs_back_up_a_layer():
    upward = sorted(f"{m} -> {t}" for m, targets in import_graph().items() for t in targets if layer(t) > layer(m))
    assert upward == []


def test_the_checks_see_a_planted_circle_and_an_upward_import():
    graph = import_graph()
    graph["lit_gan.terms"] = graph["lit_gan.terms"] | {"lit_gan.models.base"}
    assert ["lit_gan.models.base", "lit_gan.terms"] in [[m for m in c if m in ("lit_gan.models.base", "lit_gan.terms")] for c in cycles(graph)]
    assert layer("lit_gan.models.base") > layer("lit_gan.terms")


def test_no_term_reads_the_trainer_or_asks_torch_whether_it_trains():
    """Terms see the Step: `step.phase` / `step.training` say what kind of loss it is."""
    for module in ("terms.py", "objective.py"):
        tree = ast.parse((PACKAGE / module).read_text())
        read = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
        assert not read & {"trainer", "_trainer", "is_grad_enabled", "batches_seen"}, module
