"""The `arc-ttt` command: a user's mistake exits 2 with one `error:` line naming what to fix (no traceback), a bug
keeps its traceback, and the modules and documents the kit's messages name exist."""
import ast
import importlib
import json
import os
import re

import pytest
from conftest import ROOT, write_kaggle_files

from arc_ttt import cli
from arc_ttt.cli import main

SRC = os.path.join(ROOT, "src", "arc_ttt")


@pytest.fixture
def files(tmp_path, small_tasks):
    """Two real tasks as Kaggle files, run logs with and without tasks, and a file that is not JSON."""
    challenges, solutions, *_ = write_kaggle_files(tmp_path, small_tasks[:2])
    (tmp_path / "log.json").write_text(json.dumps({"summary": {}}))
    (tmp_path / "run.json").write_text(json.dumps({"summary": {}, "tasks": []}))
    (tmp_path / "broken.json").write_text("{not json")
    old = {"grid": [[1]], "views": ["a"], "logprobs": [-1.0], "votes": 1}  # no origins: written before they were
    (tmp_path / "old.json").write_text(json.dumps({"tasks": [{"id": small_tasks[0].id, "candidates": [[old]]}]}))
    return {"challenges": str(challenges), "solutions": str(solutions), "log": str(tmp_path / "log.json"), "run": str(tmp_path / "run.json"),
            "broken": str(tmp_path / "broken.json"), "old": str(tmp_path / "old.json"), "missing": str(tmp_path / "missing"),
            "task": small_tasks[0].id, "tmp": str(tmp_path)}


# (argv with {placeholders} from `files`, what the error line says)
USER_MISTAKES = {
    "validate, a missing challenges file": (["validate", "{missing}", "{solutions}"], "challenges file {missing}: "
                                                                                      "cannot read"),
    "validate, a submission that is not JSON": (["validate", "{challenges}", "{broken}"], "submission file {broken}: "
                                                                                         "not valid JSON"),
    "score, solutions that are not JSON": (["score", "{challenges}", "{challenges}", "{broken}"],
                                           "solutions file {broken}: not valid JSON"),
    "rescore, an unknown rule": (["rescore", "{run}", "--solutions", "{solutions}", "--rules", "poe,nope"],
                                 "unknown rule(s) nope; choose from"),
    "rescore, a log without tasks": (["rescore", "{log}", "--solutions", "{solutions}"], "{log}: no `tasks` list"),
    "rescore by source, a log before candidates named their views' sources": (
        ["rescore", "{old}", "--solutions", "{solutions}", "--sources", "llm"],
        "{old}: a candidate without its views' sources"),
    "show-prompt, an unknown task": (["show-prompt", "{challenges}", "no-such-task"], "no task 'no-such-task' in"),
    "show-prompt, a test index out of range": (["show-prompt", "{challenges}", "{task}", "--test-index", "9"],
                                               "--test-index 9 is out of range"),
    "show-prompt, a format reference that does not load": (["show-prompt", "{challenges}", "{task}", "--format",
                                                             "no_such_module:X"], "'no_such_module:X': cannot load it"),
    "run, a missing config file": (["run", "--config", "{missing}.yaml"], "config file {missing}.yaml: cannot read"),
    "kernel build, a missing model": (["kernel", "build", "--model", "{missing}", "--owner", "someone", "--out",
                                       "{tmp}/bundle"], "{missing} is not a model folder: it does not exist"),
    "kernel build, a folder that holds no model": (["kernel", "build", "--model", "{tmp}", "--owner", "someone",
                                                    "--out", "{tmp}/bundle"],
                                                   "{tmp} is not a model folder: it holds neither"),
    "kernel build, both a model folder and a Kaggle model": (["kernel", "build", "--model", "{tmp}", "--model-source",
                                                              "o/m/f/v/1", "--owner", "someone"], "give exactly one"),
    "kernel build, an unknown accelerator": (["kernel", "build", "--model-source", "o/m/f/v/1", "--owner", "someone",
                                              "--machine-shape", "NvidiaP100"], "machine_shape 'NvidiaP100' is not one"),
    "kernel build, a missing wheelhouse": (["kernel", "build", "--model-source", "o/m/f/v/1", "--owner", "someone",
                                            "--format", "kit", "--wheelhouse", "{missing}", "--out", "{tmp}/bundle"],
                                           "{missing}/arc-ttt-wheels-manifest.json missing: run `make wheels`"),
    "wheels check, a missing folder": (["wheels", "check", "{missing}"], "{missing}: no such wheelhouse folder"),
    "wheels build, a missing requirements file": (["wheels", "build", "--requirements", "{missing}.txt", "--dest",
                                                   "{tmp}/house"], "{missing}.txt: no such requirements file"),
    "finetune, full training of a 4-bit model": (["finetune", "--config", "configs/finetune-local.yaml", "--set",
                                                  "train.mode=full", "--set", "model.load_in_4bit=true"],
                                                 "train.mode: full cannot train model.load_in_4bit: true weights"),
    "finetune, an unknown key": (["finetune", "--config", "configs/finetune-local.yaml", "--set", "train.nope=1"],
                                 "unknown key(s) nope"),
    "synth, nothing asked": (["synth"], "give --out DIR"),
    "gpu-run, a folder gpu-pack did not write": (["gpu-run", "--pack", "{missing}", "--out", "{tmp}/out",
                                                  "--max-seconds", "1"], "{missing}: no run.json"),
}


@pytest.mark.parametrize("case", USER_MISTAKES)
def test_a_user_mistake_exits_2_with_one_error_line(case, files, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)  # the shipped configs by their relative paths, as the README gives them
    argv, says = USER_MISTAKES[case]
    assert main([a.format(**files) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and says.format(**files) in err
    assert "Traceback" not in err and "Errno" not in err  # the kit's own message, not the OS's


def test_a_bug_keeps_its_traceback(files, monkeypatch):
    """A plain ValueError is not a user's mistake: main lets it through (the traceback shows where it came from)."""
    def broken(challenges, submission):
        raise ValueError("a bug in the validator")

    monkeypatch.setattr(cli, "validate_submission", broken)
    with pytest.raises(ValueError, match="a bug in the validator"):
        main(["validate", files["challenges"], files["solutions"]])


@pytest.mark.parametrize("bug", [ValueError, RuntimeError, FileNotFoundError])
def test_a_bug_inside_the_delivery_commands_keeps_its_traceback(bug, files, monkeypatch):
    """kernel build and wheels check turn no plain ValueError or OSError into an error line: only the kit's own types."""
    from arc_ttt.delivery import bundle, wheelhouse

    def broken(*args, **kwargs):
        raise bug("a bug in the builder")

    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(bundle, "describe_model", broken)  # called inside build_bundle, after the user's input checks
    model = os.path.join(files["tmp"], "model")
    os.makedirs(model)
    open(os.path.join(model, "model.gguf"), "wb").close()
    with pytest.raises(bug, match="a bug in the builder"):
        main(["kernel", "build", "--model", model, "--owner", "someone", "--out", os.path.join(files["tmp"], "out")])
    monkeypatch.setattr(wheelhouse, "read_wheel", broken)
    open(os.path.join(files["tmp"], "a-1.0-py3-none-any.whl"), "wb").close()
    with pytest.raises(bug, match="a bug in the builder"):
        main(["wheels", "check", files["tmp"]])


def test_the_commands_report_through_main_alone():
    """One place prints a user error: no sub-command prints `error:` and returns 2 itself."""
    source = open(cli.__file__, encoding="utf-8").read()
    assert source.count('print(f"error: ') == 1 and source.count("return 2\n") == 1  # main's


# Module paths named in the kit's strings: `arc_ttt.<a>.<b>...`, a module and then, maybe, attributes of it.
MODULE_PATH = re.compile(r"\barc_ttt(?:\.[A-Za-z_]\w*){2,}")
DOCUMENT = re.compile(r"(?<![\w/.-])((?:[\w-]+/)*[\w-]+\.md)\b")


def strings_in_src() -> list[tuple[str, str]]:
    """(module file, text) of every string literal under src/arc_ttt: messages, help texts, docstrings."""
    found = []
    for folder, _, names in os.walk(SRC):
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                tree = ast.parse(open(path, encoding="utf-8").read())
                found += [(os.path.relpath(path, ROOT), node.value) for node in ast.walk(tree)
                          if isinstance(node, ast.Constant) and isinstance(node.value, str)]
    return found


def resolves(dotted: str) -> bool:
    """A module path, or a module and attributes of it (arc_ttt.modeling.lora.attach)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            if not hasattr(target, attr):
                return False
            target = getattr(target, attr)
        return True
    return False


def test_every_module_path_a_message_names_imports():
    named = {(where, m) for where, text in strings_in_src() for m in MODULE_PATH.findall(text)}
    assert named, "the scan finds the kit's module paths"  # e.g. core.modelfolder's make_portable hint
    assert sorted((where, m) for where, m in named if not resolves(m)) == []


def test_every_document_a_message_names_exists():
    named = {(where, d) for where, text in strings_in_src() for d in DOCUMENT.findall(text)}
    assert any(d == "benchmarks/README.md" for _, d in named)
    assert sorted((where, d) for where, d in named if not os.path.exists(os.path.join(ROOT, d))) == []


def test_a_format_of_ones_own_reaches_the_cli_by_reference(files, tmp_path, monkeypatch, capsys):
    (tmp_path / "cli_formats.py").write_text("from arc_ttt.core.formats.symbols import PromptFormat\n"
                                             "MINE = PromptFormat('cli-mine', ('<',), ('>',), '.')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cli.formats, "_REGISTRY", dict(cli.formats._REGISTRY))
    monkeypatch.setattr(cli.formats, "_REFERENCES", dict(cli.formats._REFERENCES))
    assert main(["show-prompt", files["challenges"], files["task"], "--format", "cli_formats:MINE"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("<") and ">" in out and out.rstrip("\n").endswith(">")  # its markers, not the kit's
    with pytest.raises(SystemExit) as stop:
        main(["show-prompt", files["challenges"], files["task"], "--format", "nope"])
    assert stop.value.code == 2 and "unknown prompt format 'nope'" in capsys.readouterr().err
