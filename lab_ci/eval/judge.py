"""MT-Bench-Branch: the teacher, as judge, rates an answer 1-10 against the
contributor's reference answer.

The rubric is a prompt file (``pipelines/prompts/judge_answer.txt``, with the system
prompt ``judge_system.txt``): the leaf's task description, the question exactly as
the model was asked it (a grounded skill's context included), the reference answer
and the model's answer; the judge explains in one sentence and ends with
``Rating: [[N]]``. Judging is greedy (temperature 0) and batched: one ``chat`` call
per ``batch_size`` answers, so a llama.cpp teacher decodes them together and an
OpenAI-compatible server (vLLM) gets them concurrently. A reply without a rating in
1-10 is not a score: it is recorded as unparseable and the question is left out of
the comparison (the report counts them). An empty answer is rated 1 without asking.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..sdg.questions import SeedQuestion
from ..sdg.text import FieldSpec, Unparseable, parse_fields, render
from ..teacher.base import Message, SamplingParams

PROMPTS_DIR = Path(__file__).resolve().parent / "pipelines" / "prompts"
JUDGE_PROMPT = "judge_answer.txt"
JUDGE_SYSTEM = "judge_system.txt"
SCALE = (1, 10)
MAX_TOKENS = 128
RATING = FieldSpec(
    "rating",
    regex=(
        r"rating\W{0,6}\[\[\s*(\d{1,2})\s*\]\]",
        r"rating\W{0,6}(\d{1,2})\b",
        r"\[\[\s*(\d{1,2})\s*\]\]",
    ),
    type="int",
)


@dataclass(frozen=True, slots=True)
class Rubric:
    template: str
    system: str
    version: str  # hash of both prompt files and the parsing settings

    @classmethod
    def load(cls, dirs: Iterable[str | Path] | None = None) -> Rubric:
        """The rubric files from the first of ``dirs`` (then the built-in folder) that
        has them; a missing file is a clear LabCIError."""
        from ..errors import LabCIError
        from .store import stable_hash

        texts = {}
        search = [*(Path(d) for d in dirs or ()), PROMPTS_DIR]
        for name in (JUDGE_PROMPT, JUDGE_SYSTEM):
            found = next(
                (d / name for d in search if (d / name).is_file()),
                next((d / "prompts" / name for d in search if (d / "prompts" / name).is_file()), None),
            )
            if found is None:
                raise LabCIError(f"judge prompt {name!r} not found in {', '.join(map(str, search))}")
            texts[name] = found.read_text(encoding="utf-8")
        version = stable_hash({"prompts": texts, "regex": RATING.regex, "scale": SCALE, "max_tokens": MAX_TOKENS})
        return cls(texts[JUDGE_PROMPT], texts[JUDGE_SYSTEM].strip(), version[:12])

    def conversation(self, q: SeedQuestion, answer: str) -> list[Message]:
        user = render(
            self.template,
            {"task_description": q.task_description, "question": q.prompt, "reference": q.reference, "answer": answer},
        )
        return ([Message("system", self.system)] if self.system else []) + [Message("user", user)]


@dataclass(frozen=True, slots=True)
class Judgment:
    rating: int | None  # 1-10, None when the judge's reply held no valid rating
    text: str  # the judge's reply
    error: str = ""

    def to_dict(self) -> dict:
        return {"rating": self.rating, "text": self.text, "error": self.error}

    @classmethod
    def from_dict(cls, d: dict) -> Judgment:
        return cls(d.get("rating"), d.get("text", ""), d.get("error", ""))


def parse_rating(text: str) -> Judgment:
    try:
        rating = parse_fields(text, [RATING])["rating"]
    except Unparseable as e:
        return Judgment(None, text, f"unparseable: {e}")
    if not SCALE[0] <= rating <= SCALE[1]:
        return Judgment(None, text, f"rating {rating} is outside {SCALE[0]}-{SCALE[1]}")
    return Judgment(rating, text)


def _ask(judge, convs, params) -> list[list]:
    """One batched call; when it fails (a local judge refuses a whole batch when one
    prompt does not fit its context), each conversation alone, a failure becoming that
    answer's error. If every one fails too, the judge itself is broken: raise."""
    from ..teacher.base import Completion, TeacherError

    try:
        return judge.chat(convs, params, n=1)
    except TeacherError as batch_error:
        if len(convs) == 1:
            raise
        out, failed = [], 0
        for conv in convs:
            try:
                out.append(judge.chat([conv], params, n=1)[0])
            except TeacherError as e:
                failed += 1
                out.append([Completion(f"the judge failed on this answer: {e}", "error")])
        if failed == len(convs):
            raise batch_error
        return out


def judge_answers(
    judge,
    rubric: Rubric,
    pairs: Sequence[tuple[SeedQuestion, str]],
    *,
    seed: int = 0,
    batch_size: int = 64,
    on_batch=None,
) -> list[Judgment]:
    """A judgment for each (question, answer), in order. ``on_batch(start, judgments)``
    is called after each batch (the cache writes there). Raises the teacher's
    ``TeacherError``."""
    out: list[Judgment | None] = [None] * len(pairs)
    asks = []
    for i, (_q, answer) in enumerate(pairs):
        if not answer.strip():
            out[i] = Judgment(SCALE[0], "", "empty answer: rated 1 without asking the judge")
        else:
            asks.append(i)
    params = SamplingParams(temperature=0.0, max_tokens=MAX_TOKENS, seed=seed)
    for start in range(0, len(asks), max(1, batch_size)):
        idx = asks[start : start + batch_size]
        replies = _ask(judge, [rubric.conversation(*pairs[i]) for i in idx], params)
        batch = []
        for i, comps in zip(idx, replies):
            c = comps[0] if comps else None
            if c is None or c.finish_reason == "error":
                out[i] = Judgment(None, c.text if c else "", (c.text if c else "") or "the judge failed on this answer")
            else:
                out[i] = parse_rating(c.text)
            batch.append((i, out[i]))
        if on_batch:
            on_batch(batch)
    return [j if j is not None else Judgment(None, "", "not judged") for j in out]
