"""Training data: messages JSONL in, token ids and loss labels out.

A record is one JSON object per line::

    {"messages": [{"role": "system", "content": "..."},
                  {"role": "user", "content": "..."},
                  {"role": "assistant", "content": "..."}],
     "metadata": {...}}

It is rendered with the LAB chat template::

    <|system|>\\n{system}\\n<|user|>\\n{user}\\n<|assistant|>\\n{answer}<|endoftext|>

and the loss is taken only on the assistant answers, closing ``<|endoftext|>``
included; every other position carries the label ``-100`` (ignored).

Rendering is done segment by segment (prompt parts and answer parts are tokenized
separately), so the label boundary is exact whatever the tokenizer merges.
Validation (:func:`read_messages_jsonl`) is pure and names ``file:line`` for every
bad record; tokenization (:func:`tokenize_records`) needs only a tokenizer with
``__call__(list[str], add_special_tokens=False)`` (any Hugging Face tokenizer).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lab_ci.errors import LabCIError

IGNORE_INDEX = -100
ROLES = ("system", "user", "assistant")
SYSTEM, USER, ASSISTANT, EOS = "<|system|>", "<|user|>", "<|assistant|>", "<|endoftext|>"
SPECIAL_TOKENS = (SYSTEM, USER, ASSISTANT, EOS)


@dataclass(frozen=True, slots=True)
class Record:
    """One validated conversation and where it came from."""

    messages: tuple[tuple[str, str], ...]  # (role, content)
    source: str  # "file:line"


def parse_record(obj: object, where: str) -> Record:
    """Validate one decoded JSON value as a messages record (raises LabCIError)."""
    if not isinstance(obj, dict):
        raise LabCIError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    messages = obj.get("messages")
    if not isinstance(messages, list) or not messages:
        raise LabCIError(f"{where}: 'messages' must be a non-empty list")
    out = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise LabCIError(f"{where}: messages[{i}] must be an object")
        role, content = msg.get("role"), msg.get("content")
        if role not in ROLES:
            raise LabCIError(f"{where}: messages[{i}].role must be one of {', '.join(ROLES)}, got {role!r}")
        if not isinstance(content, str):
            raise LabCIError(f"{where}: messages[{i}].content must be a string")
        out.append((role, content))
    if not any(role == "assistant" and content.strip() for role, content in out):
        raise LabCIError(f"{where}: no non-empty assistant message (nothing to train on)")
    if "metadata" in obj and not isinstance(obj["metadata"], dict):
        raise LabCIError(f"{where}: 'metadata' must be an object")
    return Record(tuple(out), where)


def read_messages_jsonl(path: Path) -> list[Record]:
    """Read and validate a messages JSONL file; blank lines are skipped."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LabCIError(f"{path}: training data file not found") from None
    except UnicodeDecodeError as exc:
        raise LabCIError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise LabCIError(f"{path}: cannot read training data: {exc.strerror}") from None
    records = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LabCIError(f"{path}:{lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
        records.append(parse_record(obj, f"{path}:{lineno}"))
    return records


def render_segments(messages: Sequence[tuple[str, str]]) -> list[tuple[str, bool]]:
    """The LAB-template text of a conversation as (text, trained) segments."""
    segments: list[tuple[str, bool]] = []
    for i, (role, content) in enumerate(messages):
        if role == "assistant":
            segments.append((f"{ASSISTANT}\n", False))
            segments.append((f"{content}{EOS}", True))
            if i + 1 < len(messages):
                segments.append(("\n", False))
        else:
            segments.append((f"<|{role}|>\n{content}\n", False))
    return segments


@dataclass
class TokenizedData:
    """Token ids and labels of every kept sample, plus what was dropped and why."""

    input_ids: list[list[int]] = field(default_factory=list)
    labels: list[list[int]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    n_records: int = 0
    n_truncated: int = 0
    n_skipped_too_long: int = 0
    n_skipped_no_target: int = 0

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> list[int]:
        return [len(ids) for ids in self.input_ids]

    @property
    def loss_tokens(self) -> list[int]:
        return [sum(1 for t in lab if t != IGNORE_INDEX) for lab in self.labels]

    def fingerprint(self) -> str:
        """A short hash of the token ids and labels, to refuse resuming on other data."""
        h = hashlib.sha256()
        for ids, lab in zip(self.input_ids, self.labels):
            h.update(json.dumps([ids, lab]).encode())
        return h.hexdigest()[:16]

    def stats(self) -> dict:
        return {
            "records": self.n_records,
            "samples": len(self),
            "tokens": sum(self.lengths),
            "loss_tokens": sum(self.loss_tokens),
            "truncated": self.n_truncated,
            "skipped_too_long": self.n_skipped_too_long,
            "skipped_no_target": self.n_skipped_no_target,
        }


def tokenize_records(records: Iterable[Record], tokenizer, max_seq_len: int, overlong: str = "skip") -> TokenizedData:
    """Tokenize records with the LAB template; labels are -100 outside assistant answers.

    ``overlong`` is ``"skip"`` (drop samples longer than ``max_seq_len``) or
    ``"truncate"`` (cut them; dropped anyway if no answer token survives).
    """
    if overlong not in ("skip", "truncate"):
        raise LabCIError(f"overlong must be 'skip' or 'truncate', got {overlong!r}")
    records = list(records)
    per_record = [render_segments(r.messages) for r in records]
    flat = [text for segs in per_record for text, _ in segs]
    ids_flat = tokenizer(flat, add_special_tokens=False, verbose=False)["input_ids"] if flat else []
    out = TokenizedData(n_records=len(records))
    pos = 0
    for record, segs in zip(records, per_record):
        ids: list[int] = []
        labels: list[int] = []
        for _, trained in segs:
            seg_ids = list(ids_flat[pos])
            pos += 1
            ids.extend(seg_ids)
            labels.extend(seg_ids if trained else [IGNORE_INDEX] * len(seg_ids))
        if len(ids) > max_seq_len:
            if overlong == "skip":
                out.n_skipped_too_long += 1
                continue
            ids, labels = ids[:max_seq_len], labels[:max_seq_len]
            out.n_truncated += 1
        if all(t == IGNORE_INDEX for t in labels):
            out.n_skipped_no_target += 1
            continue
        out.input_ids.append(ids)
        out.labels.append(labels)
        out.sources.append(record.source)
    return out


def load_dataset(paths: Sequence[Path], tokenizer, max_seq_len: int, overlong: str = "skip") -> TokenizedData:
    """Read, validate and tokenize the given JSONL files, in order."""
    records: list[Record] = []
    for path in paths:
        records.extend(read_messages_jsonl(Path(path)))
    if not records:
        raise LabCIError(f"no training records in {', '.join(str(p) for p in paths) or '(no files)'}")
    data = tokenize_records(records, tokenizer, max_seq_len, overlong)
    if not len(data):
        raise LabCIError(
            f"every training record was dropped ({data.n_skipped_too_long} longer than "
            f"max_seq_len={max_seq_len}, {data.n_skipped_no_target} without answer tokens)"
        )
    return data
