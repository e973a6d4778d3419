"""The package's layers point one way: core <- modeling <- runner <- edges (cli, delivery).

The import graph is read from the source (module-level imports only), so a cycle or an upward
import fails here before it fails at run time. Imports inside functions must say why beside them.
"""
import ast
import os
import subprocess
import sys

import pytest

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src", "arc_ttt")
# What each layer may import at module level (besides itself).
ALLOWED = {
    "core": set(),
    "modeling": {"core"},
    "runner": {"core"},  # the model-backed engine is loaded inside the run, only when there is work
    "delivery": {"core"},
    "": {"core", "modeling", "runner", "delivery"},  # cli, __init__, __main__
}
# Recipes that need the model from their first line may import it (the run may not: it writes its fallback
# submission before torch loads).
RECIPES = {"runner.finetune": {"modeling"}}


def modules() -> dict[str, str]:
    """dotted name (relative to arc_ttt) -> file path, for every module of the package."""
    out = {}
    for folder, _, files in os.walk(SRC):
        for f in files:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(folder, f), SRC)[:-3].replace(os.sep, ".")
                out[rel.removesuffix(".__init__").removesuffix("__init__")] = os.path.join(folder, f)
    return out


def resolve(module: str, node: ast.ImportFrom, is_package: bool) -> list[str]:
    """Targets (relative to arc_ttt) of one relative `from ... import ...`."""
    parts = module.split(".") if module else []
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
    prefix = [*base, *(node.module.split(".") if node.module else [])]
    known = modules()
    targets = []
    for alias in node.names:
        full = ".".join([*prefix, alias.name])
        targets.append(full if full in known else ".".join(prefix))
    return targets


def graph() -> tuple[dict[str, set[str]], list[str]]:
    """Module-level imports inside the package, and the function-level imports that give no reason."""
    edges, unexplained = {}, []
    for name, path in modules().items():
        source = open(path, encoding="utf-8").read()
        tree = ast.parse(source)
        lines = source.splitlines()
        is_package = path.endswith("__init__.py")
        edges[name] = set()
        top = set(map(id, tree.body))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            if id(node) not in top:
                if "#" not in lines[node.lineno - 1] and (node.module or "") != "__future__":
                    unexplained.append(f"{path}:{node.lineno}")
                continue
            if isinstance(node, ast.ImportFrom) and node.level:
                edges[name] |= {t for t in resolve(name, node, is_package) if t != name}
    return edges, unexplained


def layer(name: str) -> str:
    return name.split(".")[0] if "." in name else ("" if name in ("", "cli", "__main__") else name)


def test_no_import_cycles():
    edges, _ = graph()
    state: dict[str, int] = {}

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join([*stack[stack.index(nxt):], nxt]))
            if nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])


def test_layers_only_point_down():
    edges, _ = graph()
    wrong = [f"{a} imports {b}" for a, targets in edges.items() for b in targets
             if layer(b) != layer(a) and layer(b) not in ALLOWED[layer(a)] | RECIPES.get(a, set()) and b != ""]
    assert wrong == []


def test_function_level_imports_say_why():
    _, unexplained = graph()
    assert unexplained == []


@pytest.mark.parametrize("module", ["arc_ttt.core.config", "arc_ttt.core.clock", "arc_ttt.core.planner",
                                    "arc_ttt.core.submission", "arc_ttt.core.journal", "arc_ttt.core.views",
                                    "arc_ttt.core.textformat", "arc_ttt.runner.pipeline", "arc_ttt.cli"])
def test_the_core_and_the_run_load_without_torch(module):
    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", f"importing {module} loads torch"
