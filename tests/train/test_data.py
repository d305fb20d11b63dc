"""studio.train.data: the records → examples contract attribution relies on."""

from __future__ import annotations

import pytest

from studio.core.errors import InvalidInput
from studio.train.data import (
    IGNORE,
    chat_prompt,
    encode_query,
    examples_from_snapshot,
    pack_examples,
)
from studio.train.tiny import byte_tokenizer


@pytest.fixture(scope="module")
def tok():
    return byte_tokenizer()


def rec(rid, kind="text", **kw):
    base = dict(
        record_id=rid,
        datanet="notes",
        version=1,
        contributor="0xA",
        kind=kind,
        text="",
        prompt=None,
        response=None,
        messages=None,
    )
    base.update(kw)
    return base


def test_prompt_response_loss_on_response_only_and_matches_encode_query(tok):
    r = rec(1, "prompt_response", prompt="When is high tide?", response="At 06:12 on the log.")
    (ex,) = examples_from_snapshot([r], tok, max_length=256)
    ids, labels = encode_query(tok, "When is high tide?", "At 06:12 on the log.", max_length=256)
    assert (ex.input_ids, ex.labels) == (ids, labels)
    prompt_ids = tok(chat_prompt(tok, "When is high tide?"), add_special_tokens=False)["input_ids"]
    assert ids[: len(prompt_ids)] == prompt_ids
    assert all(x == IGNORE for x in labels[: len(prompt_ids)])
    answer = tok.decode([t for t in labels if t != IGNORE])
    assert answer.startswith("At 06:12 on the log.") and "<|im_end|>" in answer
    assert (ex.record_id, ex.datanet, ex.version, ex.contributor) == (1, "notes", 1, "0xA")


def test_plain_format_matches_encode_query_without_chat(tok):
    r = rec(2, "prompt_response", prompt="Q", response="A")
    (ex,) = examples_from_snapshot([r], tok, max_length=64, fmt="plain")
    assert (ex.input_ids, ex.labels) == encode_query(tok, "Q", "A", chat=False, max_length=64)
    assert tok.decode(ex.input_ids) == "Q\nA<|im_end|>"


def test_chat_loss_on_assistant_turns_only(tok):
    msgs = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello bees"},
        {"role": "user", "content": "more"},
        {"role": "assistant", "content": "honey"},
    ]
    (ex,) = examples_from_snapshot([rec(3, "chat", messages=msgs)], tok, max_length=512)
    learned = tok.decode([t for t in ex.labels if t != IGNORE])
    assert "hello bees" in learned and "honey" in learned
    assert "hi" not in learned and "more" not in learned and "user" not in learned
    assert tok.decode(ex.input_ids) == tok.apply_chat_template(msgs, tokenize=False)


def test_text_windows_and_full_loss(tok):
    text = "sourdough starter " * 20
    exs = examples_from_snapshot([rec(4, text=text)], tok, max_length=100)
    assert [e.chunk for e in exs] == list(range(len(exs))) and len(exs) == 4
    assert all(e.labels == e.input_ids for e in exs)
    assert sum(len(e.input_ids) for e in exs) == len(text) + 1  # bytes + eos


def test_objects_and_dicts_give_the_same_examples(tok):
    from types import SimpleNamespace

    d = rec(5, "prompt_response", prompt="p", response="r")
    a = examples_from_snapshot([d], tok, max_length=64)
    b = examples_from_snapshot([SimpleNamespace(**d)], tok, max_length=64)
    assert a == b


def test_bad_inputs(tok):
    with pytest.raises(InvalidInput):
        examples_from_snapshot([], tok, max_length=64, fmt="weird")
    with pytest.raises(InvalidInput):
        encode_query(tok, "p", "", max_length=64)
    with pytest.raises(InvalidInput, match="longer than"):
        encode_query(tok, "p" * 100, "o", max_length=64)
    # a prompt that fills the window leaves nothing to learn: dropped
    r = rec(6, "prompt_response", prompt="x" * 200, response="y")
    assert examples_from_snapshot([r], tok, max_length=64) == []


def test_packing_restarts_positions_and_masks_boundaries(tok):
    exs = examples_from_snapshot([rec(i, text="ab" * i) for i in range(1, 6)], tok, max_length=12)
    rows = pack_examples(exs, 12)
    assert sum(len(r[0]) for r in rows) == sum(len(e.input_ids) for e in exs)
    assert all(len(r[0]) <= 12 for r in rows)
    assert len(rows) == 3  # best-fit decreasing: 11 | 9+3 | 7+5
    assert sorted(len(r[0]) for r in rows) == [11, 12, 12]
    for _ids, labels, pos in rows:
        starts = [i for i, p in enumerate(pos) if p == 0]
        assert all(labels[s] == IGNORE for s in starts)
    assert max(sum(1 for p in r[2] if p == 0) for r in rows) == 2
    assert pack_examples(exs, 12) == rows  # deterministic
