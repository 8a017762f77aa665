"""The values a preview produces (pure data; ``to_dict`` for ``--format json``;
:func:`lab_ci.preview.render.render_markdown` for the comment)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

MARKER = "<!-- lab-ci:preview -->"

#: leaf statuses that do not fail the preview: an empty ``qna.yaml`` is valid to
#: ``lab-ci check`` (a warning, as in the reference validator), so it does not fail here
OK_STATUSES = ("previewed", "deleted", "empty")


@dataclass
class PrecheckItem:
    seed_id: str  # counted from 1 ("3", or "2.1" for a knowledge context's Q/A)
    question: str
    expected: str  # the contributor's answer
    got: str  # the current model's answer
    f1: float
    rouge_l: float


@dataclass
class LeafPreview:
    path: str
    status: str  # "previewed" | "invalid" | "failed" | "empty" | "deleted"
    reason: str = ""  # why not previewed
    diagnostics: list[dict] = field(default_factory=list)  # every check error of an invalid leaf
    pipeline: str = ""
    pipeline_version: str = ""
    #: training records, each with ``fields`` added: the generated context, question,
    #: answer and, for knowledge, the document passage, its source and heading
    accepted: list[dict] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    hints: list[str] = field(default_factory=list)
    precheck: list[PrecheckItem] = field(default_factory=list)

    @property
    def previewed(self) -> bool:
        return self.status == "previewed"


@dataclass
class PreviewResult:
    leaves: list[LeafPreview]
    #: {"id", "name", "details"}: never the model's local path; None when no leaf needed it
    teacher: dict | None
    precheck_model: dict | None = None
    base: str | None = None
    head: str | None = None
    samples: int = 3
    seed: int = 0
    timings: dict = field(default_factory=dict)
    check_url: str | None = None  # where the full check results are (the bot sets it)
    #: where the whole preview is when the comment must be shortened: an https URL
    #: (linked) or a file name (the ``--json-output`` file)
    full_output: str | None = None

    @property
    def exit_code(self) -> int:
        """0 when every leaf was previewed (or is deleted or empty), 1 when one was
        invalid or its generation failed."""
        return 0 if all(l.status in OK_STATUSES for l in self.leaves) else 1

    def to_dict(self) -> dict:
        return {
            "version": 1,
            "teacher": self.teacher,
            "precheck_model": self.precheck_model,
            "base": self.base,
            "head": self.head,
            "samples": self.samples,
            "seed": self.seed,
            "timings": self.timings,
            "leaves": [asdict(l) for l in self.leaves],
        }
