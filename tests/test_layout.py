"""The package's layers point one way: core <- modeling <- runner <- edges (cli, delivery).

The import graph is read from the source, so a cycle or an upward import fails here before it fails at
run time. The layers are checked on module-level imports (a layer may load a higher one lazily, inside a
function, when it says why); cycles are checked on every import, those inside functions included, since a
lazy import only hides a circle. An import inside a function carries its reason on its line.
"""
import ast
import os
import re
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
    "synth": {"core"},  # the task generator: grids and tasks, nothing of the model or the run
    "lab": {"core"},  # statistics, policy fitting, simulation: for benchmarks and tests, never the product
    "": {"core", "modeling", "runner", "delivery", "synth"},  # cli, __init__, __main__
}
PRODUCT = ("core", "modeling", "runner", "delivery", "")  # what a submission runs: it never imports the lab
# Recipes that need the model from their first line may import it (the run may not: it writes its fallback
# submission before torch loads).
RECIPES = {"runner.finetune": {"modeling"}, "runner.checkpoint": {"modeling"}, "runner.gpu_run": {"modeling"},
           "runner.gridtrain": {"modeling"}}


def modules() -> dict[str, str]:
    """dotted name (relative to arc_ttt) -> file path, for every module of the package."""
    out = {}
    for folder, _, files in os.walk(SRC):
        if os.path.relpath(folder, SRC).startswith(os.path.join("delivery", "cells")):
            continue  # the notebook's cells: text the notebook runs, never imported as modules
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


def reason(lines: list[str]) -> str:
    """The comment on an import's lines, without lint pragmas: `# noqa: E402` says nothing about why."""
    comment = " ".join(line.partition("#")[2] for line in lines if "#" in line)
    return re.sub(r"noqa(:\s*\w+(,\s*\w+)*)?|type:\s*ignore(\[[^\]]*\])?", " ", comment).strip(" -:;")


def graph() -> tuple[dict[str, set[str]], dict[str, set[str]], list[str]]:
    """Imports inside the package at module level, the same counting imports inside functions, and the
    imports inside functions that give no reason (at least three words)."""
    top_edges, all_edges, unexplained = {}, {}, []
    for name, path in modules().items():
        source = open(path, encoding="utf-8").read()
        tree = ast.parse(source)
        lines = source.splitlines()
        is_package = path.endswith("__init__.py")
        top_edges[name], all_edges[name] = set(), set()
        top = set(map(id, tree.body))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            at_top = id(node) in top
            if not at_top and len(reason(lines[node.lineno - 1:node.end_lineno]).split()) < 3:
                unexplained.append(f"{path}:{node.lineno}")
            if isinstance(node, ast.ImportFrom) and node.level:
                targets = {t for t in resolve(name, node, is_package) if t != name}
                all_edges[name] |= targets
                if at_top:
                    top_edges[name] |= targets
    return top_edges, all_edges, unexplained


def layer(name: str) -> str:
    return name.split(".")[0] if "." in name else ("" if name in ("", "cli", "__main__") else name)


def test_the_graph_counts_imports_inside_functions():
    top, every, _ = graph()
    # the run loads the model-backed engine inside a function: a cycle through it would be a cycle all the same
    assert "modeling.engine" in every["runner.pipeline"] and "modeling.engine" not in top["runner.pipeline"]


def test_no_import_cycles():
    _, edges, _ = graph()
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
    edges, _, _ = graph()
    wrong = [f"{a} imports {b}" for a, targets in edges.items() for b in targets
             if layer(b) != layer(a) and layer(b) not in ALLOWED[layer(a)] | RECIPES.get(a, set()) and b != ""]
    assert wrong == []


def test_the_product_never_imports_the_lab():
    """Not even inside a function: what decides (fitting, statistics, replay) stays out of what is decided."""
    _, edges, _ = graph()
    wrong = [f"{a} imports {b}" for a, targets in edges.items() if layer(a) in PRODUCT
             for b in targets if layer(b) == "lab"]
    assert wrong == [] and any(layer(a) == "lab" for a in edges)


def test_function_level_imports_say_why():
    _, _, unexplained = graph()
    assert unexplained == []


@pytest.mark.parametrize("module", ["arc_ttt.core.config", "arc_ttt.core.clock", "arc_ttt.core.planner",
                                    "arc_ttt.core.submission", "arc_ttt.core.journal", "arc_ttt.core.views",
                                    "arc_ttt.core.formats", "arc_ttt.runner.pipeline", "arc_ttt.cli",
                                    "arc_ttt.synth.catalog", "arc_ttt.lab.simulate", "arc_ttt.lab.policyfit"])
def test_the_core_and_the_run_load_without_torch(module):
    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", f"importing {module} loads torch"


TESTS = os.path.dirname(os.path.abspath(__file__))
# Test files under a layer's folder that test no single module of it, and what they test instead.
ACROSS = {"core/formats/test_registry.py": "a toy format added by one file and one register line, end to end",
          "core/formats/test_formats.py": "every shipped format against the anchors' own layouts and tokenizers",
          "runner/test_run_e2e.py": "the CLI in a subprocess",
          "delivery/test_kaggle_configs.py": "the shipped Kaggle configs"}


def test_tests_mirror_src():
    """tests/<layer>/test_<module>.py for src/arc_ttt/<layer>/<module>.py: a reader finds a module's tests by its path."""
    known = modules()
    stray = []
    for layer in ("core", "modeling", "runner", "delivery", "synth", "lab"):
        for folder, _, files in os.walk(os.path.join(TESTS, layer)):
            package = os.path.relpath(folder, TESTS).replace(os.sep, ".")  # tests/core/formats: core.formats
            for f in sorted(files):
                rel = os.path.relpath(os.path.join(folder, f), TESTS).replace(os.sep, "/")
                if f.startswith("test_") and f.endswith(".py") and rel not in ACROSS \
                        and f"{package}.{f[5:-3]}" not in known:
                    stray.append(rel)
    assert stray == [], "name a test file after the module it tests, or list it in ACROSS with what it tests"


def test_no_test_module_imports_another():
    """Shared helpers live in conftest.py; a test file importing another couples their collection."""
    found = []
    for folder, _, files in os.walk(TESTS):
        for f in files:
            if f.endswith(".py"):
                for node in ast.walk(ast.parse(open(os.path.join(folder, f), encoding="utf-8").read())):
                    names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                        [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                    found += [f"{f}: {n}" for n in names if n.split(".")[0].startswith("test_")]
    assert found == []


def test_modules_and_functions_stay_readable():
    """No module in src/ over 400 lines, no function over 80: past that a reader cannot hold it at once."""
    long = []
    for name, path in modules().items():
        source = open(path, encoding="utf-8").read()
        if source.count("\n") > 400:
            long.append(f"{name}: {source.count(chr(10))} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 80:
                long.append(f"{name}.{node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert long == []


def test_views_are_drawn_only_through_the_plan():
    """`core.views.ViewPlan` owns which views a task is seen through (the augmentation, one seed stream per use):
    no module of the package or benchmark calls `sample_views` itself, so changing augmentation is one edit."""
    benchmarks = os.path.join(os.path.dirname(TESTS), "benchmarks")
    paths = [p for name, p in modules().items() if name != "core.views"]
    paths += [os.path.join(folder, f) for folder, _, files in os.walk(benchmarks) for f in files if f.endswith(".py")]
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "sample_views":
                found.append(f"{os.path.relpath(path)}:{node.lineno}")
    assert len(paths) > 60 and found == []
