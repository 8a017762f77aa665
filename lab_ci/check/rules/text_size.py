"""text-size: seed texts too long for the teacher model to use.

Tokens are estimated as characters / 4 (rounded up), the usual figure for English
text with BPE tokenizers; no tokenizer is loaded.

- Skills: one seed example (context + question + answer) may take at most half of the
  teacher's context window (``CheckOptions.teacher_context_tokens``, default 4096, the
  reference generator's ``max_num_tokens``): the generation prompt carries the example
  plus instructions, and the rest of the window is needed for the generated output.
- Knowledge (version 3): a seed ``context`` may take at most 500 tokens, and the
  context with all its questions and answers at most 750 tokens: the knowledge
  pipelines put the context and its Q&A into one prompt next to a document chunk,
  and the community taxonomy guide asks for contexts of about 500 tokens.
"""

from __future__ import annotations

from collections.abc import Iterator

from lab_ci.check.rules.base import Problem, RuleContext
from lab_ci.check.rules.examples import SKILL

ID = "text-size"
LEVEL = "warning"
SUMMARY = "a seed example too long for the teacher model's context"
PASSING = SKILL
FAILING = SKILL.replace("answer: Hat.", "answer: " + "A hat and a mat and a bat and a rat. " * 5)
#: Shown with a 64-token teacher window (a limit of 32 tokens per example).
EXAMPLE = {"options": {"teacher_context_tokens": 64}}

CHARS_PER_TOKEN = 4
KNOWLEDGE_CONTEXT_TOKENS = 500
KNOWLEDGE_EXAMPLE_TOKENS = 750


def estimate_tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


def _s(x) -> str:
    return x if isinstance(x, str) else ""


def check(leaf, data, ctx: RuleContext) -> Iterator[Problem]:
    seeds = data.get("seed_examples") if isinstance(data, dict) else None
    if not isinstance(seeds, list):
        return
    skill_limit = ctx.options.teacher_context_tokens // 2
    for i, ex in enumerate(seeds):
        if not isinstance(ex, dict):
            continue
        path = f".seed_examples[{i}]"
        qas = ex.get("questions_and_answers")
        if ctx.schema_name == "knowledge" and isinstance(qas, list):
            ctx_tokens = estimate_tokens(_s(ex.get("context")))
            if ctx_tokens > KNOWLEDGE_CONTEXT_TOKENS:
                line, col = ctx.at("seed_examples", i, "context")
                yield Problem(
                    f"the context of seed example {i + 1} is about {ctx_tokens} tokens; keep it under "
                    f"{KNOWLEDGE_CONTEXT_TOKENS}",
                    line,
                    col,
                    path + ".context",
                    hint=f"Shorten the passage to about {KNOWLEDGE_CONTEXT_TOKENS * CHARS_PER_TOKEN:,} characters, "
                    "or split it into two seed examples with their own questions.",
                )
            total = ctx_tokens + sum(
                estimate_tokens(_s(qa.get("question"))) + estimate_tokens(_s(qa.get("answer")))
                for qa in qas
                if isinstance(qa, dict)
            )
            if total > KNOWLEDGE_EXAMPLE_TOKENS:
                line, col = ctx.at("seed_examples", i)
                yield Problem(
                    f"seed example {i + 1} (context, questions and answers) is about {total} tokens; "
                    f"keep it under {KNOWLEDGE_EXAMPLE_TOKENS}",
                    line,
                    col,
                    path,
                    hint="Shorten the context or the answers; the teacher sees the whole example next to a "
                    "document chunk in one prompt.",
                )
        else:
            total = sum(estimate_tokens(_s(ex.get(k))) for k in ("context", "question", "answer"))
            if total > skill_limit:
                line, col = ctx.at("seed_examples", i)
                yield Problem(
                    f"seed example {i + 1} is about {total} tokens (context + question + answer); "
                    f"keep it under {skill_limit}, half the teacher's {ctx.options.teacher_context_tokens}-token window",
                    line,
                    col,
                    path,
                    hint="Shorten the context or the answer; the teacher needs the other half of its window "
                    "for instructions and for what it writes.",
                )
