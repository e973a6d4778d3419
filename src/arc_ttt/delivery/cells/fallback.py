# On Kaggle, a valid submission.json first, from the challenges file alone (standard library only): the next
# cell needs the code dataset, and a missing one raises there, on either run.
import glob, json, os


def legal_grid(g):
    """g when it is a legal ARC grid (1x1 to 30x30, rectangular, integers 0-9), else 1x1 zero."""
    ok = isinstance(g, list) and 0 < len(g) <= 30 and all(
        isinstance(r, list) and 0 < len(r) <= 30 and len(r) == len(g[0]) and all(type(v) is int and 0 <= v <= 9 for v in r)
        for r in g)
    return g if ok else [[0]]


def write_early_fallback(root, competition, challenges, output_dir):
    """A valid submission.json before anything needs the code dataset: each test input as attempt 1 and [[0]] as
    attempt 2, as arc_ttt's own fallback writes it (the environment cell rewrites it with arc_ttt). The competition's
    file wins, as in inputs.find_challenges. Never raises: a missing challenges file is reported there."""
    try:
        found = [challenges] if challenges else sorted(
            glob.glob(os.path.join(root, "**", "arc-agi_test_challenges.json"), recursive=True))
        parts = {f: os.path.relpath(f, root).split(os.sep) for f in found}
        found = ([f for f in found if competition in parts[f]] if competition else []) or \
            [f for f in found if parts[f][0] == "competitions"] or found
        if not found:
            print("no arc-agi_test_challenges.json under", root, "yet: no early fallback file")
            return
        with open(found[0], encoding="utf-8") as f:
            tasks = json.load(f)
        answers = {tid: [{"attempt_1": legal_grid(t.get("input")), "attempt_2": [[0]]} for t in task["test"]]
                   for tid, task in tasks.items()}
        os.makedirs(output_dir, exist_ok=True)
        path = os.path.join(output_dir, "submission.json")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(answers, f)
        os.replace(path + ".tmp", path)
        print(f"early fallback submission.json: {len(answers)} tasks from {found[0]}")
    except Exception as e:  # noqa: BLE001 - the environment cell writes it again, with arc_ttt
        print("WARNING: no early fallback file:", type(e).__name__, e)


if os.environ.get("KAGGLE_KERNEL_RUN_TYPE") or os.path.isdir(INPUT_ROOT):
    write_early_fallback(INPUT_ROOT, COMPETITION, CHALLENGES, OUTPUT_DIR or "/kaggle/working")
