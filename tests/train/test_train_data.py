"""Messages JSONL validation and LAB-template tokenization with assistant-only labels."""

from __future__ import annotations

import json

import pytest
from train_helpers import arithmetic_records, write_jsonl

from lab_ci.errors import LabCIError
from lab_ci.train.data import IGNORE_INDEX, load_dataset, read_messages_jsonl, tokenize_records


def test_labels_cover_only_assistant_answer_and_eos(tmp_path, tiny_tokenizer):
    path = write_jsonl(tmp_path / "d.jsonl", arithmetic_records(3))
    data = tokenize_records(read_messages_jsonl(path), tiny_tokenizer, max_seq_len=256)
    for ids, labels, rec in zip(data.input_ids, data.labels, arithmetic_records(3)):
        assert len(ids) == len(labels)
        trained = [t for t in labels if t != IGNORE_INDEX]
        assert tiny_tokenizer.decode(trained) == rec["messages"][-1]["content"] + "<|endoftext|>"
        # the labelled tokens are a contiguous suffix identical to the input ids there
        first = next(i for i, t in enumerate(labels) if t != IGNORE_INDEX)
        assert labels[first:] == ids[first:]
        # the full row is exactly the LAB chat template
        assert tiny_tokenizer.decode(ids) == tiny_tokenizer.apply_chat_template(rec["messages"], tokenize=False)
        assert tiny_tokenizer.decode(ids).startswith("<|system|>\nYou are a careful calculator.\n<|user|>\n")


def test_multi_turn_trains_every_assistant_turn(tmp_path, tiny_tokenizer):
    rec = {
        "messages": [
            {"role": "user", "content": "What is 1 plus 1?"},
            {"role": "assistant", "content": "2"},
            {"role": "user", "content": "What is 2 plus 2?"},
            {"role": "assistant", "content": "4"},
        ]
    }
    data = tokenize_records(read_messages_jsonl(write_jsonl(tmp_path / "m.jsonl", [rec])), tiny_tokenizer, 256)
    labels = data.labels[0]
    spans, cur = [], []
    for t in labels:
        if t == IGNORE_INDEX:
            if cur:
                spans.append(cur)
            cur = []
        else:
            cur.append(t)
    spans += [cur] if cur else []
    assert [tiny_tokenizer.decode(s) for s in spans] == ["2<|endoftext|>", "4<|endoftext|>"]


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "invalid JSON"),
        ('{"messages": []}', "'messages' must be a non-empty list"),
        ('{"messages": [{"role": "bot", "content": "x"}]}', "role must be one of"),
        ('{"messages": [{"role": "user", "content": 3}]}', "content must be a string"),
        ('{"messages": [{"role": "user", "content": "hi"}]}', "no non-empty assistant message"),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_bad_record_names_file_and_line(tmp_path, line, message):
    good = json.dumps(arithmetic_records(1)[0])
    path = tmp_path / "bad.jsonl"
    path.write_text(f"{good}\n\n{good}\n{line}\n{good}\n")
    with pytest.raises(LabCIError) as exc:
        read_messages_jsonl(path)
    assert f"{path}:4" in str(exc.value)
    assert message in str(exc.value)


def test_missing_file_is_a_clear_error(tmp_path, tiny_tokenizer):
    with pytest.raises(LabCIError, match="not found"):
        load_dataset([tmp_path / "nope.jsonl"], tiny_tokenizer, 128)


def test_overlong_samples_are_counted_skipped_or_truncated(tmp_path, tiny_tokenizer):
    recs = arithmetic_records(20)
    path = write_jsonl(tmp_path / "d.jsonl", recs)
    full = tokenize_records(read_messages_jsonl(path), tiny_tokenizer, 10_000)
    limit = sorted(full.lengths)[10]
    n_over = sum(1 for n in full.lengths if n > limit)
    assert n_over > 0
    skipped = tokenize_records(read_messages_jsonl(path), tiny_tokenizer, limit, "skip")
    assert len(skipped) == 20 - n_over and skipped.n_skipped_too_long == n_over
    assert max(skipped.lengths) <= limit
    truncated = tokenize_records(read_messages_jsonl(path), tiny_tokenizer, limit, "truncate")
    assert truncated.n_truncated + truncated.n_skipped_no_target == n_over
    assert max(truncated.lengths) <= limit
    assert len(truncated) + truncated.n_skipped_no_target == 20


def test_everything_dropped_is_an_error(tmp_path, tiny_tokenizer):
    path = write_jsonl(tmp_path / "d.jsonl", arithmetic_records(3))
    with pytest.raises(LabCIError, match="every training record was dropped"):
        load_dataset([path], tiny_tokenizer, 4)
