"""The values a preview produces (pure data; ``to_dict`` for ``--format json``;
:func:`lab_ci.preview.render.render_markdown` for the comment)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

MARKER = "<!-- lab-ci:preview -->"


@dataclass
class PrecheckItem:
    seed_id: str
    question: str
    expected: str  # the contributor's answer
    got: str  # the current model's answer
    f1: float
    rouge_l: float


@dataclass
class LeafPreview:
    path: str
    status: str  # "previewed" | "invalid" | "failed" | "deleted"
    reason: str = ""  # why not previewed
    diagnostics: list[dict] = field(default_factory=list)  # first check errors for invalid leaves
    pipeline: str = ""
    pipeline_version: str = ""
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
    teacher: dict  # {"id", "name", "details"}
    precheck_model: dict | None = None
    base: str | None = None
    head: str | None = None
    samples: int = 3
    seed: int = 0
    timings: dict = field(default_factory=dict)
    check_url: str | None = None  # where the full check results are (the bot sets it)

    @property
    def exit_code(self) -> int:
        """0 when every leaf was previewed, 1 when one was invalid or failed."""
        return 0 if all(l.status in ("previewed", "deleted") for l in self.leaves) else 1

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
