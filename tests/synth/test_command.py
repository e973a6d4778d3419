"""`arc-ttt synth` from the command line: --list, --out with --show, and what it refuses."""
import json

from arc_ttt.cli import main
from arc_ttt.core.corpus import load_folder
from arc_ttt.synth.catalog import FAMILIES, by_prior


def test_list_names_every_family_by_prior(capsys):
    assert main(["synth", "--list"]) == 0
    out = capsys.readouterr().out
    assert f"{len(FAMILIES)} families, {len(by_prior())} priors" in out
    assert all(name in out for name in FAMILIES)


def test_out_and_show_write_tasks_the_corpus_reads_and_a_page_of_pictures(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path), "--n", "6", "--families", "gravity,d8_whole", "--seed", "2",
                 "--show"]) == 0
    assert "6 tasks verified, 0 refused" in capsys.readouterr().out
    assert len(load_folder(str(tmp_path))) == 6
    page = (tmp_path / "synth.html").read_text()
    assert page.count("<div class='task'>") == 4  # two per family
    assert "synth-gravity-2-0" in page and "data:image/png;base64," in page
    assert json.loads((tmp_path / "manifest.txt").read_text())["tasks"] == 6


def test_nothing_to_do_and_unknown_families_are_errors(tmp_path, capsys):
    assert main(["synth"]) == 2
    assert "give --out DIR" in capsys.readouterr().err
    assert main(["synth", "--out", str(tmp_path), "--families", "gravity,nope"]) == 2
    assert "unknown families ['nope']" in capsys.readouterr().err
