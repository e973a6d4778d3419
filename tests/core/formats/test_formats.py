"""The winners' prompt formats: their exact text on real tasks, their vocabularies, refusal of a tokenizer that
does not fit, and TTT + DFS + PoE end to end with tiny random models on tokenizers built like the anchors'.

Expected texts are written here from the anchors' published layouts (issue 12), not from the kit's code:
- ARChitects / PoE: BOS, the preprompt, `I` rows-joined `\\n+/-=O` rows-joined `\\n` EOS per demo, the query up to `O`.
- NVARC: `<|im_start|>user\\n` rows `<|im_end|><|im_start|>assistant\\n` rows `<|im_end|>`, no BOS.
- marc: numpy-printed arrays in Llama-3 Instruct's chat template (which trims each message's content).
"""
import json

import numpy as np
import pytest
import torch

from arc_ttt.cli import main as cli_main
from arc_ttt.core.formats.chat import NumpyGridGrammar, char_step, numpy_text, parse_numpy_text
from arc_ttt.core.config import ModelConfig
from arc_ttt.core.tasks import Pair, Task
from arc_ttt.core.formats.codec import Codec, Grammar, TokenizerFormatError
from arc_ttt.core.formats import FORMAT_FILE, codec_for, get_format, resolve, write_format_file
from arc_ttt.core.views import View
from arc_ttt.modeling import lora, ttt
from arc_ttt.core.clock import Deadline
from arc_ttt.core.formats.grammar import GridGrammar
from arc_ttt.modeling.decoding import dfs
from arc_ttt.modeling.export import format_keep_ids, prepare_model, shrink_vocab
from arc_ttt.modeling.loading import load_kwargs
from arc_ttt.modeling.selection import poe_nll
from conftest import ROOT, tiny_llama, ttt_then_predict

ARCH_PREPROMPT = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghjklmnpqrstuvwxyz"
MARC_SYSTEM = ("Figure out the underlying transformation in the following examples and apply it to the test case. "
               "Here are some examples from this transformation, your answer must follow the format.\n"
               "The input-output grids are provided as python arrays:\n")


# --- tokenizers built to each anchor's vocabulary ------------------------------------------------------

def word_tokenizer(tokens, specials, words=(), **roles):
    """A fast WordLevel tokenizer: `words` matched whole (longest first), every other character alone."""
    import re

    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate([*specials, *tokens])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=roles.get("unk_token") or specials[0]))
    pattern = "".join(re.escape(w) + "|" for w in sorted(words, key=len, reverse=True)) + r"[\s\S]"
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(pattern), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    return PreTrainedTokenizerFast(tokenizer_object=tok, clean_up_tokenization_spaces=False, **roles)


def architects_tokenizer(merges=()):
    """ARChitects' reduced vocabulary: single characters A-Z a-z 0-9 ! ? . : , ; * + / - = and newline, no merges."""
    chars = [*"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!?.:,;*+/-=", "\n"]
    return word_tokenizer([*chars, *merges], ["<unk>", "<s>", "</s>", "<pad>"], words=merges, unk_token="<unk>",
                          bos_token="<s>", eos_token="</s>", pad_token="<pad>")


def nvarc_tokenizer(extra=()):
    """NVARC's 16 tokens: 0-9, newline, user, assistant, <|endoftext|> (pad), <|im_start|>, <|im_end|>."""
    return word_tokenizer([*"0123456789", "\n", "user", "assistant", *extra],
                          ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], words=("user", "assistant", *extra),
                          unk_token="<|endoftext|>", pad_token="<|endoftext|>", eos_token="<|im_end|>")


MARC_MERGES = ("[[", "]]", "]]#", "]\n", " [", " ->", *(f" {d}" for d in "0123456789"), "the", "The", "ation")


def marc_tokenizer():
    """A stock-BPE-like Llama-3 vocabulary: every printable character plus merges like `[[`, ` 7`, `]]#`."""
    chars = [chr(c) for c in range(32, 127)] + ["\n"]
    return word_tokenizer([*chars, *MARC_MERGES],
                          ["<|end_of_text|>", "<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>",
                           "<|end_header_id|>"], words=MARC_MERGES, unk_token="<|end_of_text|>",
                          bos_token="<|begin_of_text|>", eos_token="<|eot_id|>")


TOKENIZERS = {"architects": architects_tokenizer, "nvarc": nvarc_tokenizer, "marc": marc_tokenizer}


@pytest.fixture(scope="module")
def anchor_tokenizers():
    return {name: make() for name, make in TOKENIZERS.items()}


# --- expected texts, from the anchors' layouts ------------------------------------------------------------

def rows(g):
    return "\n".join("".join(str(v) for v in r) for r in g)


def architects_text(demos, query):
    text = ARCH_PREPROMPT + "".join(f"I{rows(p.input)}\n+/-=O{rows(p.output)}\n</s>" for p in demos)
    return text + f"I{rows(query)}\n+/-=O"


def nvarc_text(demos, query):
    turn = "<|im_start|>user\n{}<|im_end|><|im_start|>assistant\n"
    return "".join(turn.format(rows(p.input)) + rows(p.output) + "<|im_end|>" for p in demos) + turn.format(rows(query))


def marc_text(demos, query):
    system = MARC_SYSTEM + "".join(f"{np.array(p.input)} -> {np.array(p.output)}#\n" for p in demos)
    user = f"{np.array(query)} -> "
    head = "<|start_header_id|>{}<|end_header_id|>\n\n"
    return (head.format("system") + system.strip() + "<|eot_id|>" + head.format("user") + user.strip() + "<|eot_id|>"
            + head.format("assistant"))


REFERENCE = {"architects": architects_text, "nvarc": nvarc_text, "marc": marc_text}

# Task 66e6c45b of the ARC-AGI-1 evaluation set, written out by hand.
ARCH_66E6C45B = (ARCH_PREPROMPT + "I0000\n0340\n0760\n0000\n+/-=O3004\n0000\n0000\n7006\n</s>"
                 "I0000\n0560\n0830\n0000\n+/-=O5006\n0000\n0000\n8003\n</s>I0000\n0230\n0490\n0000\n+/-=O")
NVARC_66E6C45B = ("<|im_start|>user\n0000\n0340\n0760\n0000<|im_end|><|im_start|>assistant\n3004\n0000\n0000\n7006"
                  "<|im_end|><|im_start|>user\n0000\n0560\n0830\n0000<|im_end|><|im_start|>assistant\n5006\n0000\n0000"
                  "\n8003<|im_end|><|im_start|>user\n0000\n0230\n0490\n0000<|im_end|><|im_start|>assistant\n")
MARC_66E6C45B = (
    "<|start_header_id|>system<|end_header_id|>\n\n" + MARC_SYSTEM
    + "[[0 0 0 0]\n [0 3 4 0]\n [0 7 6 0]\n [0 0 0 0]] -> [[3 0 0 4]\n [0 0 0 0]\n [0 0 0 0]\n [7 0 0 6]]#\n"
    + "[[0 0 0 0]\n [0 5 6 0]\n [0 8 3 0]\n [0 0 0 0]] -> [[5 0 0 6]\n [0 0 0 0]\n [0 0 0 0]\n [8 0 0 3]]#"
    + "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n[[0 0 0 0]\n [0 2 3 0]\n [0 4 9 0]\n [0 0 0 0]] ->"
    + "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
LITERAL = {"architects": ARCH_66E6C45B, "nvarc": NVARC_66E6C45B, "marc": MARC_66E6C45B}


@pytest.fixture(scope="module")
def task_66e6c45b(arc1_eval):
    return arc1_eval["66e6c45b"]


@pytest.mark.parametrize("name", ["architects", "nvarc", "marc"])
def test_the_text_of_a_real_task_is_the_anchors_layout(name, task_66e6c45b, anchor_tokenizers):
    task = task_66e6c45b
    assert get_format(name).prompt_text(task.train, task.test[0].input) == LITERAL[name]
    codec = codec_for(name, anchor_tokenizers[name])  # with the tokenizer: the same text, special tokens resolved
    assert codec.prompt_text(task.train, task.test[0].input) == LITERAL[name]


@pytest.mark.parametrize("name", ["architects", "nvarc", "marc"])
def test_text_and_ids_match_the_layout_on_many_real_tasks(name, small_tasks, arc1_eval, anchor_tokenizers):
    tok = anchor_tokenizers[name]
    codec = codec_for(name, tok)
    for task in [*small_tasks, *list(arc1_eval.valid)[:12]]:
        for i, test in enumerate(task.test):
            want = REFERENCE[name](task.train, test.input)
            assert get_format(name).prompt_text(task.train, test.input) == want, (task.id, i)
            ids = codec.encode_prompt(task.train, test.input).tolist()
            # the ids are exactly the text, read by the anchor's tokenizer (special tokens as special tokens)
            bos = [] if name == "nvarc" else [tok.bos_token_id]
            assert ids == bos + tok.encode(want, add_special_tokens=False), (task.id, i)


@pytest.mark.parametrize("name", ["architects", "nvarc", "marc"])
def test_training_targets_are_the_answers_and_their_end(name, task_66e6c45b, anchor_tokenizers):
    tok = anchor_tokenizers[name]
    codec = codec_for(name, tok)
    pairs = task_66e6c45b.train
    enc = codec.encode_pairs(pairs)
    targets = tok.decode(enc.ids[enc.loss_mask].tolist(), skip_special_tokens=False)
    ends = {"architects": "\n</s>", "nvarc": "<|im_end|>", "marc": "#<|eot_id|>"}
    if name == "marc":  # the demos sit in the system message; the assistant answers the last pair
        assert targets == numpy_text(pairs[-1].output) + ends[name]
    else:
        assert targets == "".join(rows(p.output) + ends[name] for p in pairs)
    assert tok.decode(enc.ids.tolist(), skip_special_tokens=False).endswith(targets[-12:])


# --- grammars and decoding ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["architects", "nvarc", "marc"])
def test_every_answer_round_trips_and_the_grammar_accepts_it(name, anchor_tokenizers):
    codec = codec_for(name, anchor_tokenizers[name])
    grammar = codec.grammar()
    rng = np.random.default_rng(0)
    for h, w in [(1, 1), (1, 30), (30, 1), (3, 7), (30, 30), (12, 5)]:
        grid = rng.integers(0, 10, (h, w)).astype(np.uint8)
        symbols = codec.answer_symbols(grid)
        assert symbols[-1] == 11 and 11 not in symbols[:-1]  # END, once, last
        masks = grammar.masks(symbols)
        assert all(m[k] for m, k in zip(masks, symbols)), (h, w)
        assert len(symbols) <= grammar.max_tokens
        np.testing.assert_array_equal(codec.decode([codec.grid_token_ids[k] for k in symbols]), grid)


def test_separated_rows_grammar_forbids_a_trailing_newline():
    grammar = GridGrammar(4, separated=True)
    state = grammar.start
    for k in (1, 2, 10, 3):  # "12\n3"
        state = grammar.advance(state, k)
    assert not grammar.allowed(state)[11]  # row 2 is one cell short
    state = grammar.advance(state, 4)
    ok = grammar.allowed(state)
    assert ok[11] and ok[10] and not ok[:10].any()
    for _ in range(2):  # rows 3 and 4: the fourth row is the last one allowed
        for k in (10, 5, 6):
            state = grammar.advance(state, k)
    assert not grammar.allowed(state)[10] and grammar.allowed(state)[11]


def test_nvarc_decoding_refuses_a_trailing_newline(anchor_tokenizers):
    codec = codec_for("nvarc", anchor_tokenizers["nvarc"])
    d, nl = codec.digit_ids, codec.newline_id
    assert codec.decode([d[1], d[2], nl, d[3], d[4], codec.end_id]).tolist() == [[1, 2], [3, 4]]
    assert codec.decode([d[1], d[2], nl, d[3], d[4], nl, codec.end_id]) is None


def test_numpy_automaton_accepts_exactly_numpy_prints():
    rng = np.random.default_rng(0)
    for h in range(1, 31, 7):
        for w in (1, 2, 15, 30):
            text = numpy_text(rng.integers(0, 10, (h, w))) + "#"
            state = (0, 0, 0, 0)
            for ch in text:
                state = char_step(state, ch)
                assert state is not None, (h, w, text)
            assert state[0] == 7
    for bad in ["[[1 2]\n [3]]", "[[1  2]]", "[1 2]", "[[1 2]]\n", "[[" + " ".join("0" * 31) + "]]", "[[12]]"]:
        state = (0, 0, 0, 0)
        for ch in bad:
            state = char_step(state, ch)
        assert state is None or state[0] != 6, bad
    assert parse_numpy_text("[[1 2]\n [3 4]]#").tolist() == [[1, 2], [3, 4]]
    assert parse_numpy_text("[[1 2]\n[3 4]]") is None and parse_numpy_text("[[1 2]\n [3]]") is None


def test_the_chat_format_uses_the_tokenizers_own_template():
    tok = marc_tokenizer()
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tok.chat_template = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                         "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    tok.bos_token = "<|im_start|>"  # as in SmolLM2: the template's first marker is not a BOS to leave out
    codec = codec_for("marc", tok)
    demo = Pair(np.array([[1, 2]]), np.array([[3], [4]]))
    want = (f"<|im_start|>system\n{MARC_SYSTEM}[[1 2]] -> [[3]\n [4]]#\n<|im_end|>\n"
            "<|im_start|>user\n[[5]] -> <|im_end|>\n<|im_start|>assistant\n")
    assert codec.prompt_text([demo], np.array([[5]])) == want
    assert codec.encode_prompt([demo], np.array([[5]])).tolist() == tok.encode(want, add_special_tokens=False)


def test_numpy_grammar_allows_the_multi_character_tokens(anchor_tokenizers):
    codec = codec_for("marc", anchor_tokenizers["marc"])
    grammar = NumpyGridGrammar(codec.texts)
    allowed = {codec.texts[k] for k in np.flatnonzero(grammar.allowed(grammar.start))}
    assert allowed == {"[", "[["}
    after = grammar.advance(grammar.advance(grammar.start, codec.texts.index("[[")), 3)  # "[[3"
    allowed = {codec.texts[k] for k in np.flatnonzero(grammar.allowed(after))}
    assert allowed == {" ", "]", "]]", "]]#", "]\n", *(f" {d}" for d in "0123456789")}


# --- refusal ----------------------------------------------------------------------------------------

def test_a_tokenizer_without_the_symbols_is_refused_naming_format_and_symbols(tokenizer, anchor_tokenizers):
    with pytest.raises(TokenizerFormatError, match=r"prompt format 'architects'.*'A' is missing.*'\+' is missing"):
        codec_for("architects", tokenizer)  # the kit's own character vocabulary: I, O, E, digits only
    with pytest.raises(TokenizerFormatError, match=r"'nvarc'.*special token '<\|im_start\|>' is missing.*'user'"):
        codec_for("nvarc", anchor_tokenizers["architects"])
    with pytest.raises(TokenizerFormatError, match=r"'marc'.*'\[' is missing"):
        codec_for("marc", anchor_tokenizers["nvarc"])
    with pytest.raises(TokenizerFormatError, match=r"prompt format 'kit': 'I' is missing \(unknown token\)"):
        codec_for("kit", anchor_tokenizers["nvarc"])


def test_a_tokenizer_that_merges_symbols_is_refused():
    with pytest.raises(TokenizerFormatError, match=r"'architects'.*merged symbols: 'ABCD' encodes to (\d+) tokens "
                                                   r"instead of \d+ \(one per symbol\).*writes 'AB' for 'A'"):
        codec_for("architects", architects_tokenizer(merges=("AB",)))
    with pytest.raises(TokenizerFormatError, match=r"'architects'.*merged symbols.*'00'"):
        codec_for("architects", architects_tokenizer(merges=("00",)))


def test_the_kit_layout_no_longer_passes_for_an_architects_model(anchor_tokenizers, tmp_path):
    # the issue's trap: ARChitects' vocabulary has I, O, E, digits and newline, so the kit's check passes it;
    # the folder's arc_format.json is what routes it to its own format
    codec_for("kit", anchor_tokenizers["architects"])
    write_format_file(str(tmp_path), "architects")
    assert json.loads((tmp_path / FORMAT_FILE).read_text()) == {"format": "architects"}
    assert resolve("auto", str(tmp_path)) == "architects"
    assert resolve("nvarc", str(tmp_path)) == "nvarc"
    assert resolve("auto", str(tmp_path / "none")) == "kit"
    with pytest.raises(ValueError, match="unknown prompt format 'llama'"):
        resolve("llama", None)


def test_the_engine_refuses_a_model_in_the_wrong_format(tiny_model_dir):
    from arc_ttt.core.config import RunConfig
    from arc_ttt.modeling.engine import ModelEngine

    cfg = RunConfig(model=ModelConfig(path=tiny_model_dir, dtype="float32", device="cpu", format="nvarc"))
    with pytest.raises(TokenizerFormatError, match="'nvarc'"):
        ModelEngine.load(cfg)


def test_a_prequantised_folder_loads_with_its_own_quantisation(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"quantization_config": {"load_in_4bit": True,
                                                                                "quant_method": "bitsandbytes"}}))
    kw = load_kwargs(ModelConfig(path=str(tmp_path), load_in_4bit=True), torch.device("cpu"), torch.float32)
    assert "quantization_config" not in kw and kw["device_map"] == {"": torch.device("cpu")}
    (tmp_path / "config.json").write_text("{}")
    assert "device_map" not in load_kwargs(ModelConfig(path=str(tmp_path)), torch.device("cpu"), torch.float32)


# --- vocabulary shrinking and prepare-model ---------------------------------------------------------------

def test_shrinking_keeps_what_nvarc_needs(tmp_path, task_66e6c45b):
    big = nvarc_tokenizer(extra=("system", "0000"))  # a bigger vocabulary than the format needs
    src, dst = tmp_path / "src", tmp_path / "dst"
    tiny_llama(big, hidden=16, layers=1).save_pretrained(src)
    big.save_pretrained(src)
    with pytest.raises(TokenizerFormatError, match="merged symbols.*'0000'"):
        codec_for("nvarc", big)  # "0000" merges four cells: refused before shrinking, too
    plain = nvarc_tokenizer(extra=("system",))
    plain.save_pretrained(src)
    assert cli_main(["prepare-model", str(src), str(dst), "--shrink-vocab", "--format", "nvarc",
                     "--dtype", "float32"]) == 0
    assert json.loads((dst / FORMAT_FILE).read_text()) == {"format": "nvarc"}
    from transformers import AutoTokenizer

    small = AutoTokenizer.from_pretrained(dst)
    assert len(small) == 16 and len(format_keep_ids(plain, "nvarc")) == 16
    codec = codec_for(resolve("auto", str(dst)), small)
    task = task_66e6c45b
    assert small.decode(codec.encode_prompt(task.train, task.test[0].input), skip_special_tokens=False) == NVARC_66E6C45B


def test_a_prequantised_folder_is_copied_with_its_format_file(tmp_path, anchor_tokenizers):
    src, dst = tmp_path / "bnb", tmp_path / "out"
    src.mkdir()
    (src / "config.json").write_text(json.dumps({"quantization_config": {"quant_method": "bitsandbytes",
                                                                          "load_in_4bit": True}}))
    (src / "model.safetensors").write_bytes(b"4-bit weights, never loaded")
    anchor_tokenizers["architects"].save_pretrained(src)
    assert prepare_model(str(src), str(dst), fmt="architects") == str(dst)
    assert (dst / "model.safetensors").read_bytes() == b"4-bit weights, never loaded"
    assert resolve("auto", str(dst)) == "architects"
    with pytest.raises(TokenizerFormatError, match="'nvarc'"):
        prepare_model(str(src), str(tmp_path / "wrong"), fmt="nvarc")
    with pytest.raises(ValueError, match="pre-quantised"):
        prepare_model(str(src), str(tmp_path / "shrunk"), shrink_vocab=True, fmt="architects")
    assert not (tmp_path / "wrong").exists() and not (tmp_path / "shrunk").exists()


def test_shrinking_keeps_what_architects_needs_and_the_logits(task_66e6c45b):
    big = architects_tokenizer(merges=("Hello", "World"))
    original = tiny_llama(big, hidden=16, layers=1)
    model, small = shrink_vocab(tiny_llama(big, hidden=16, layers=1), big, fmt="architects")
    # kept: the specials, the preprompt, I and O, +/-=, digits, newline (not i, o, !?.:,;* or the two words)
    assert sorted(small.get_vocab()) == sorted(["<unk>", "<s>", "</s>", "<pad>", *ARCH_PREPROMPT, "I", "O", *"+/-=",
                                                *"0123456789", "\n"])
    task = task_66e6c45b
    old_ids = codec_for("architects", big).encode_prompt(task.train, task.test[0].input)
    new_ids = codec_for("architects", small).encode_prompt(task.train, task.test[0].input)
    assert small.decode(new_ids[1:].tolist(), skip_special_tokens=False) == ARCH_66E6C45B
    keep = format_keep_ids(big, "architects")
    with torch.no_grad():
        want = torch.log_softmax(original(input_ids=torch.from_numpy(old_ids)[None]).logits[0, :, keep], -1)
        got = torch.log_softmax(model(input_ids=torch.from_numpy(new_ids)[None]).logits[0], -1)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)  # float32: the same rows of the same weights


def test_the_chat_format_is_never_shrunk(anchor_tokenizers):
    with pytest.raises(TokenizerFormatError, match="'marc'.*cannot be shrunk"):
        shrink_vocab(tiny_llama(anchor_tokenizers["marc"], hidden=16, layers=1), anchor_tokenizers["marc"], fmt="marc")


def test_prepare_model_refuses_a_tokenizer_outside_the_format(tiny_model_dir, tmp_path, capsys):
    assert cli_main(["prepare-model", tiny_model_dir, str(tmp_path / "x"), "--format", "architects",
                     "--dtype", "float32"]) == 2
    assert "'architects'" in capsys.readouterr().err and not (tmp_path / "x").exists()


# --- show-prompt --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["architects", "nvarc", "marc"])
def test_show_prompt_prints_the_exact_text(name, challenges, capsys, tmp_path, anchor_tokenizers):
    path, _, _ = challenges
    assert cli_main(["show-prompt", str(path), "66e6c45b", "--format", name]) == 0
    assert capsys.readouterr().out == LITERAL[name] + ("" if LITERAL[name].endswith("\n") else "\n")
    folder = tmp_path / name
    anchor_tokenizers[name].save_pretrained(folder)
    write_format_file(str(folder), name)
    assert cli_main(["show-prompt", str(path), "66e6c45b", "--model", str(folder), "--test-index", "0"]) == 0
    assert capsys.readouterr().out.startswith(LITERAL[name])


def test_show_prompt_refuses_a_mismatched_model_and_a_bad_index(challenges, capsys, tiny_model_dir):
    path, _, _ = challenges
    assert cli_main(["show-prompt", str(path), "66e6c45b", "--format", "nvarc", "--model", tiny_model_dir]) == 2
    assert "'nvarc'" in capsys.readouterr().err
    assert cli_main(["show-prompt", str(path), "66e6c45b", "--test-index", "3"]) == 2
    assert "1 test input" in capsys.readouterr().err
    assert cli_main(["show-prompt", str(path), "66e6c45b"]) == 0  # no model, no format: the kit's layout
    assert capsys.readouterr().out.startswith("I0000\n0340\n")


# --- end to end with tiny random models ---------------------------------------------------------------------

@pytest.mark.parametrize("name", ["architects", "nvarc", "marc"])
def test_ttt_dfs_and_poe_run_end_to_end(name, tiny_task, anchor_tokenizers):
    tok = anchor_tokenizers[name]
    codec = codec_for(name, tok)
    assert isinstance(codec, Codec) and isinstance(codec.grammar(), Grammar)  # one interface for every format
    model, pred = ttt_then_predict(codec, tok, tiny_task)

    # PoE's score of a grid is its plain NLL after the prompt: the grammar never forbids a canonical answer
    identity = View(0, tuple(range(10)), tuple(range(len(tiny_task.train))))
    grid = pred.candidates[0][0].grid
    nll = poe_nll(model, codec, tiny_task, 0, [grid], [identity])[0, 0]
    enc = codec.encode_pairs([*tiny_task.train, Pair(tiny_task.test[0].input, grid)], "last")
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=torch.from_numpy(enc.ids)[None]).logits[0].float(), -1)
    want = -sum(logp[i - 1, enc.ids[i]].item() for i in np.flatnonzero(enc.loss_mask))
    assert nll == pytest.approx(want, rel=1e-4)

    # DFS at a threshold near one is the greedy path alone, and it decodes to a legal grid
    prompt = codec.encode_prompt(tiny_task.train, tiny_task.test[0].input)
    paths = dfs(model, codec, prompt, codec.grammar(), 0.999, 4, Deadline())
    assert len(paths) == 1 and codec.decode([codec.grid_token_ids[k] for k in paths[0].tokens]) is not None


@pytest.mark.parametrize("name, r, alpha, lr, views, threshold, selection", [
    ("architects", 64, 16, 1e-4, 16, 0.17, "poe"),
    ("nvarc", 256, 32, 5e-5, 16, 0.2, "both"),
    ("marc", 128, 16, 1e-4, 8, 0.1, "vote"),
])
def test_anchor_configs_carry_their_format_and_recipe(name, r, alpha, lr, views, threshold, selection):
    import os

    from arc_ttt.core.config import load_config

    root = ROOT
    cfg = load_config(os.path.join(root, "configs", f"kaggle-{name}.yaml"))
    assert cfg.model.format == name and cfg.budget.seconds == 7200
    assert (cfg.lora.r, cfg.lora.alpha, cfg.ttt.lr) == (r, alpha, lr)
    assert (cfg.inference.n_views, cfg.inference.dfs_threshold, cfg.inference.selection) == (views, threshold, selection)
