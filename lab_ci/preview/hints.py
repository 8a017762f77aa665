"""What a contributor could improve, derived from a leaf's generation (pure).

Seed examples are named by their number counted from 1 (``SeedExample.id``), as a
contributor counts them in the file."""

from __future__ import annotations

from statistics import mean

from ..sdg.seeds import LeafSeeds, SeedExample
from ..sdg.text import approx_tokens, jaccard
from .model import PrecheckItem

#: seed examples the schema asks for, and the LAB paper's advice
MIN_SKILL_SEEDS = 5
MIN_KNOWLEDGE_SEEDS = 5  # contexts, each with 3 Q/A
#: token Jaccard at or above which two seed questions count as "very similar"
SIMILAR = 0.6
#: pairs named one by one before "and N more"
MAX_PAIRS_NAMED = 6


def plural(n: int, one: str, many: str | None = None) -> str:
    """``"1 leaf"``, ``"3 leaves"``, ``"2 samples"``."""
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def and_list(items: list[str]) -> str:
    """``"a"``, ``"a and b"``, ``"a, b and c"``."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def similar_groups(examples: tuple[SeedExample, ...] | list[SeedExample]) -> tuple[int, list[str]]:
    """How many pairs of seed questions are very similar, and each group of them in
    words: ``"seeds 1, 2 and 3 are all alike"`` when every pair of a connected group is
    similar, else its pairs (``"1 and 4"``)."""
    n = len(examples)
    pairs = [
        (i, j)
        for i in range(n)
        for j in range(i + 1, n)
        if jaccard(examples[i].question, examples[j].question) >= SIMILAR
    ]
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in pairs:
        parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(i)
    words: list[str] = []
    shown = 0
    for members in sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0]):
        inner = [(i, j) for i, j in pairs if root(i) == root(members[0])]
        k = len(members)
        if k > 2 and len(inner) == k * (k - 1) // 2:
            words.append(f"seeds {and_list([examples[i].id for i in members])} are all alike")
            shown += len(inner)
            continue
        for i, j in inner:
            if len(words) < MAX_PAIRS_NAMED:
                words.append(f"seeds {examples[i].id} and {examples[j].id}")
                shown += 1
    if len(pairs) > shown:
        words.append(plural(len(pairs) - shown, "more pair"))
    return len(pairs), words


def hints_for(
    seeds: LeafSeeds | None, stats: dict, rejected: list[dict], accepted: list[dict], precheck: list[PrecheckItem]
) -> list[str]:
    hints: list[str] = []
    if seeds is not None:
        contexts = {e.context for e in seeds.examples} if seeds.kind == "knowledge" else None
        n = len(contexts) if contexts is not None else len(seeds.examples)
        need = MIN_KNOWLEDGE_SEEDS if seeds.kind == "knowledge" else MIN_SKILL_SEEDS
        if n < need:
            what = plural(n, "seed context") if seeds.kind == "knowledge" else plural(n, "seed example")
            hints.append(f"Only {what}: add at least {need} so generation has more variety to draw from.")
        # grounded skills often repeat one instruction over different contexts
        if not seeds.grounded:
            count, groups = similar_groups(seeds.examples)
            if count:
                hints.append(
                    f"{plural(count, 'pair')} of seed questions {'is' if count == 1 else 'are'} very similar "
                    f"({'; '.join(groups)}): vary wording and topics."
                )
        long_answers = [e.id for e in seeds.examples if approx_tokens(e.answer) > 250]
        if long_answers:
            which = (
                f"Seed answer {long_answers[0]} is"
                if len(long_answers) == 1
                else "Seed answers " + and_list(long_answers) + " are"
            )
            hints.append(
                f"{which} long (over ~250 tokens): long examples crowd the teacher's context "
                "and generated answers get truncated."
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
