"""What a contributor could improve, derived from a leaf's generation (pure)."""

from __future__ import annotations

from statistics import mean

from ..sdg.seeds import LeafSeeds
from ..sdg.text import approx_tokens, jaccard
from .model import PrecheckItem

#: seed examples the schema asks for, and the LAB paper's advice
MIN_SKILL_SEEDS = 5
MIN_KNOWLEDGE_SEEDS = 5  # contexts, each with 3 Q/A


def hints_for(
    seeds: LeafSeeds | None, stats: dict, rejected: list[dict], accepted: list[dict], precheck: list[PrecheckItem]
) -> list[str]:
    hints: list[str] = []
    if seeds is not None:
        contexts = {e.context for e in seeds.examples} if seeds.kind == "knowledge" else None
        n = len(contexts) if contexts is not None else len(seeds.examples)
        need = MIN_KNOWLEDGE_SEEDS if seeds.kind == "knowledge" else MIN_SKILL_SEEDS
        if n < need:
            what = "seed contexts" if seeds.kind == "knowledge" else "seed examples"
            hints.append(f"Only {n} {what}: add at least {need} so generation has more variety to draw from.")
        # grounded skills often repeat one instruction over different contexts
        qs = [] if seeds.grounded else [e.question for e in seeds.examples]
        close = sum(1 for i in range(len(qs)) for j in range(i + 1, len(qs)) if jaccard(qs[i], qs[j]) >= 0.6)
        if close:
            hints.append(f"{close} pair(s) of seed questions are very similar: vary wording and topics.")
        long_answers = [e for e in seeds.examples if approx_tokens(e.answer) > 250]
        if long_answers:
            hints.append(
                f"{len(long_answers)} seed answer(s) are long (over ~250 tokens): long examples "
                "crowd the teacher's context and generated answers get truncated."
            )
    reasons = stats.get("by_reason", {})
    total = max(1, stats.get("candidates", 0))
    if reasons.get("duplicate", 0) + reasons.get("copies-seed", 0) >= max(1, total // 3):
        hints.append(
            "Many generated questions repeat each other or the seeds: seed questions may be too similar or too narrow."
        )
    if reasons.get("truncated", 0) >= max(1, total // 3):
        hints.append(
            "Generated answers were often cut off at the length limit: shorter seed answers lead to answers that fit."
        )
    low = sum(
        reasons.get(r, 0)
        for r in ("question-judged-poor", "answer-judged-poor", "unfaithful", "irrelevant", "low-score")
    )
    if low >= max(1, total // 2):
        hints.append(
            "The judges rejected most samples: check that seed questions are clear and their "
            "answers correct and self-contained."
        )
    if reasons.get("unparseable", 0) >= max(1, total // 2):
        hints.append(
            "Most teacher outputs could not be parsed: that usually says more about the teacher "
            "than the leaf (a larger teacher in full generation does better)."
        )
    if stats and not accepted:
        hints.append(
            "No sample was accepted in this small preview; a few rejects are normal, none accepted "
            "is worth a look at the reasons below."
        )
    if precheck:
        f1 = mean(p.f1 for p in precheck)
        if f1 >= 0.8:
            hints.append(
                f"The current model already answers your seed questions well (mean F1 {f1:.2f}): "
                "this leaf may add little new."
            )
    return hints
