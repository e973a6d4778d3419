import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from arc_ttt.core.tasks import Pair
from arc_ttt.core.formats.codec import LossOn, TokenizerFormatError
from arc_ttt.core.formats.symbols import KIT, GridCodec, check_format, kit_format

grids = st.tuples(st.integers(1, 30), st.integers(1, 30)).flatmap(
    lambda hw: arrays(np.uint8, hw, elements=st.integers(0, 9)))


@pytest.fixture(scope="module")
def codec(tokenizer):
    return GridCodec.from_tokenizer(tokenizer)


@settings(max_examples=200, deadline=None)
@given(grid=grids)
def test_grid_encodes_to_hw_plus_h_tokens_and_decodes_back(codec, grid):
    ids = codec.encode_grid(grid)
    assert len(ids) == grid.size + grid.shape[0]
    np.testing.assert_array_equal(codec.decode(ids + [codec.end_id]), grid)


@given(grid=grids)
def test_text_parse_round_trips(grid):
    np.testing.assert_array_equal(KIT.parse(KIT.grid_text(grid) + "E"), grid)


@pytest.mark.parametrize("text", ["", "E", "12\n3\n", "12\n3a\n", "1 2\n", "I12\n", ("0" * 31) + "\n",
                                  "0\n" * 31, "\n\n"])
def test_parse_returns_none_for_illegal_text(text):
    assert KIT.parse(text) is None


def test_decode_returns_none_for_non_grid_tokens(codec):
    assert codec.decode([codec.digit_ids[1], codec.input_id]) is None
    assert codec.decode([codec.digit_ids[1], codec.newline_id, codec.newline_id]) is None  # empty row
    assert codec.decode([codec.end_id]) is None
    assert codec.decode([codec.digit_ids[1], codec.newline_id, codec.end_id, 99999]).tolist() == [[1]]


def test_encode_pairs_layout_and_loss_masks(codec):
    p1 = Pair(np.array([[1, 2]], np.uint8), np.array([[3], [4]], np.uint8))
    p2 = Pair(np.array([[5]], np.uint8), np.array([[6]], np.uint8))
    enc = codec.encode_pairs([p1, p2], LossOn.ALL_OUTPUTS)
    d, nl = codec.digit_ids, codec.newline_id
    expected = [codec.bos_id,
                codec.input_id, d[1], d[2], nl, codec.output_id, d[3], nl, d[4], nl, codec.end_id,
                codec.input_id, d[5], nl, codec.output_id, d[6], nl, codec.end_id]
    assert enc.ids.tolist() == expected
    first_out = [False] * 5 + [True] * 5
    second_out = [False] * 4 + [True] * 3
    assert enc.loss_mask.tolist() == [False] + first_out + second_out
    but_first = codec.encode_pairs([p1, p2], LossOn.ALL_BUT_FIRST).loss_mask.tolist()
    assert but_first == [False] * 11 + second_out
    assert codec.encode_pairs([p1, p2], "last").loss_mask.tolist() == but_first
    three = codec.encode_pairs([p1, p2, p2], LossOn.LAST).loss_mask
    assert three.sum() == 3 and three[-3:].all()


def test_prompt_ends_with_output_marker(codec):
    p = Pair(np.array([[1]], np.uint8), np.array([[2]], np.uint8))
    ids = codec.encode_prompt([p], np.array([[7, 7]], np.uint8))
    assert ids[-1] == codec.output_id
    assert ids.tolist() == codec.encode_pairs([p]).ids.tolist() + [codec.input_id, *codec.encode_grid([[7, 7]]), codec.output_id]


def test_smollm2_tokenizer_passes_the_check(smollm2_tokenizer):
    ids, _ = check_format(smollm2_tokenizer, KIT)
    assert len(set(ids.values())) == 14
    codec = GridCodec.from_tokenizer(smollm2_tokenizer)
    grid = np.arange(12, dtype=np.uint8).reshape(3, 4) % 10
    text_ids = smollm2_tokenizer.encode(KIT.grid_text(grid), add_special_tokens=False)
    assert text_ids == codec.encode_grid(grid)


def test_check_names_a_symbol_that_is_not_one_token(smollm2_tokenizer):
    with pytest.raises(TokenizerFormatError, match=r"'kit'.*'<input>' is missing \(encodes to 3 tokens"):
        check_format(smollm2_tokenizer, kit_format(input_marker="<input>"))


def test_check_catches_digit_merges():
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    symbols = ["<unk>", *"0123456789", "\n", "I", "O", "E", "00"]
    tok = Tokenizer(models.WordLevel({s: i for i, s in enumerate(symbols)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"00|[\s\S]"), behavior="isolated")  # merges "00"
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>")
    with pytest.raises(TokenizerFormatError, match="merged symbols.*'00'"):
        check_format(fast, KIT)


def test_check_catches_shared_ids(tokenizer):
    with pytest.raises(TokenizerFormatError, match="the digit 5 and the end of answer are the same symbol '5'"):
        check_format(tokenizer, kit_format(end_marker="5"))
    with pytest.raises(TokenizerFormatError, match="the newline and the input marker are the same symbol"):
        check_format(tokenizer, kit_format(input_marker="\n"))
