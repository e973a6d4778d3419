"""benchmarks/ as a shelf: every script in benchmarks/README.md's table, every benchmarks/ path the docs, configs and
src name exists (a git reference names history, not the tree), every committed result linked from
docs/decisions.md or benchmarks/README.md, none named by history."""
import glob
import os
import re

from conftest import ROOT

BENCH = os.path.join(ROOT, "benchmarks")
CONCERNS = ("accuracy", "planner", "speed", "training", "formats")
# a path under benchmarks/; one that follows "<commit>:" is a git reference (`git show 8151a4d14104:benchmarks/...`)
PATH = re.compile(r"(?<![\w:.-])benchmarks/[\w./-]*")


def read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def scripts() -> list[str]:
    """Every script under benchmarks/, relative to it (`accuracy/accuracy.py`, `provenance.py`)."""
    found = []
    for folder, dirs, files in os.walk(BENCH):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        found += [os.path.relpath(os.path.join(folder, f), BENCH) for f in files if f.endswith((".py", ".sh"))]
    return sorted(found)


def results() -> list[str]:
    return sorted(os.path.relpath(p, BENCH) for c in CONCERNS for p in glob.glob(os.path.join(BENCH, c, "results", "*"))
                  if not p.endswith(".png"))


def named_files() -> list[str]:
    files = [os.path.join(ROOT, "README.md"), os.path.join(BENCH, "README.md")]
    files += glob.glob(os.path.join(ROOT, "docs", "*.md")) + glob.glob(os.path.join(ROOT, "configs", "*.yaml"))
    files += glob.glob(os.path.join(ROOT, "src", "**", "*.py"), recursive=True)
    return files


def test_every_script_is_in_the_readme_table():
    rows = [line for line in read(os.path.join(BENCH, "README.md")).splitlines() if line.startswith("| `")]
    first_cells = {line.split("|")[1].strip().strip("`") for line in rows}
    assert len(scripts()) > 15
    assert [s for s in scripts() if s not in first_cells] == []


def test_every_benchmarks_path_named_exists():
    missing = []
    for path in named_files():
        for m in PATH.finditer(read(path)):
            named = m.group(0).rstrip(".,/")
            if not os.path.exists(os.path.join(ROOT, named)):
                missing.append((os.path.relpath(path, ROOT), named))
    assert missing == []


def test_the_shelf_docs_links_resolve():
    """The markdown links of benchmarks/README.md and docs/decisions.md, relative to each file."""
    broken = []
    for path in (os.path.join(BENCH, "README.md"), os.path.join(ROOT, "docs", "decisions.md")):
        for target in re.findall(r"\]\(([^)#\s]+)\)", read(path)):
            if "://" not in target and not os.path.exists(os.path.join(os.path.dirname(path), target)):
                broken.append((os.path.relpath(path, ROOT), target))
    assert broken == []


def test_every_result_is_linked_and_named_by_what_it_decided():
    linked = read(os.path.join(BENCH, "README.md")) + read(os.path.join(ROOT, "docs", "decisions.md"))
    assert len(results()) > 40
    assert [r for r in results() if r not in linked] == []
    assert [r for r in results() if re.search(r"_(before|after\d*)\b|(?<!_vs)_old\b|\.patch$", r)] == []
    assert not os.path.exists(os.path.join(BENCH, "results")), "results live beside their concern: <folder>/results/"


def test_each_script_finds_the_shared_provenance_from_its_folder():
    """A script in benchmarks/<folder>/ puts benchmarks/ on its import path before it imports provenance."""
    wrong = []
    for script in scripts():
        text = read(os.path.join(BENCH, script))
        if os.path.dirname(script) and "from provenance import" in text:
            head = text[:text.index("from provenance import")]
            if "os.path.dirname(os.path.dirname(os.path.abspath(__file__)))" not in head or "sys.path" not in head:
                wrong.append(script)
    assert wrong == []
