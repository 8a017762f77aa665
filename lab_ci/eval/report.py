"""The evaluation as a Markdown section (for the model card, the check run summary) and
a PNG of the per-leaf deltas. Pure, apart from writing the PNG: both read only the
``results.json`` mapping, so a stored result renders the same anywhere.

Text from contributors and models goes into table cells escaped: no HTML, no pipes,
no line breaks, no @-mentions.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

LABELS = {
    "knowledge": ("Knowledge (MMLU-Branch)", "multiple-choice accuracy (0-1)"),
    "skills": ("Skills (MT-Bench-Branch)", "judge score (1-10)"),
}


def cell(text, limit: int = 300) -> str:
    """Text made safe for one Markdown table cell."""
    text = str(text if text is not None else "")
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    text = html.escape(text, quote=False).replace("|", "\\|").replace("\n", " ").replace("\r", " ")
    return text.replace("@", "@\u200d")


def _num(v, fmt: str = ".2f") -> str:
    return "–" if v is None else format(v, fmt)


def _signed(v) -> str:
    return "–" if v is None else f"{v:+.2f}"


def _ci(entry: dict) -> str:
    ci = entry.get("ci")
    return f"{ci[0]:+.2f} to {ci[1]:+.2f}" if ci else "–"


def verdict(entry: dict) -> str:
    """A word for a delta and its interval: improved / regressed (the interval excludes
    zero) or no clear change."""
    ci = entry.get("ci")
    if not ci or entry.get("delta") is None:
        return "not evaluated"
    if ci[0] > 0:
        return "improved"
    if ci[1] < 0:
        return "regressed"
    return "no clear change"


def _leaf_name(path: str) -> str:
    return path[: -len("/qna.yaml")] if path.endswith("/qna.yaml") else path


def _section(results: dict, metric: str, details: bool) -> list[str]:
    sec = results.get(metric) or {}
    leaves = sec.get("leaves") or []
    title, unit = LABELS[metric]
    lines = [f"### {title}", ""]
    if not leaves:
        lines += ["No leaves of this kind to evaluate.", ""]
        return lines
    if metric == "knowledge":
        lines += [
            "Multiple-choice questions written by the teacher from each leaf's documents; each option is"
            " scored by the model's log-likelihood (no generation), the best-scored option is its answer.",
            "",
        ]
    else:
        lines += [
            "Each seed question answered by both models (greedy); the judge rates every answer 1-10"
            " against the contributor's reference answer.",
            "",
        ]
    lines += [
        "| leaf | role | questions | baseline | candidate | delta | 95% interval | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in leaves:
        note = ""
        if row.get("status") != "evaluated":
            note = f" ({cell(row.get('reason', ''), 120)})"
        lines.append(
            f"| `{cell(_leaf_name(row['leaf']), 200)}` | {row['role']} | {row.get('n', 0)} "
            f"| {_num(row.get('baseline'))} | {_num(row.get('candidate'))} | {_signed(row.get('delta'))} "
            f"| {_ci(row)} | {verdict(row)}{note} |"
        )
    for role, label in (("changed", "changed leaves (mean)"), ("guard", "regression guard (mean)")):
        g = sec.get(role) or {}
        if g.get("leaves"):
            lines.append(
                f"| **{label}** | {role} | {g.get('n', 0)} | {_num(g.get('baseline'))} | {_num(g.get('candidate'))} "
                f"| **{_signed(g.get('delta'))}** | {_ci(g)} | {verdict(g)} |"
            )
    lines += ["", f"Scale: {unit}."]
    if details:
        lines += ["", *_details(metric, leaves)]
    return lines + [""]


def _details(metric: str, leaves: list[dict], per_leaf: int = 25) -> list[str]:
    out = ["<details><summary>Questions</summary>", ""]
    for row in leaves:
        items = row.get("items") or []
        if not items:
            continue
        out += [f"`{cell(_leaf_name(row['leaf']), 200)}`", ""]
        if metric == "knowledge":
            out += ["| question | correct option | baseline | candidate |", "|---|---|---|---|"]
            for it in items[:per_leaf]:
                key = it["answer"]
                mark = lambda r: "✓" if r["correct"] else f"✗ ({'ABCD'[r['choice']]})"  # noqa: E731
                out.append(
                    f"| {cell(it['question'], 200)} | {'ABCD'[key]}: {cell(it['options'][key], 160)} "
                    f"| {mark(it['baseline'])} | {mark(it['candidate'])} |"
                )
        else:
            out += ["| question | baseline (rating) | candidate (rating) |", "|---|---|---|"]
            for it in items[:per_leaf]:
                b, c = it["baseline"], it["candidate"]
                out.append(
                    f"| {cell(it['question'], 200)} | {cell(b['answer'], 160)} ({_num(b['rating'], 'd')}) "
                    f"| {cell(c['answer'], 160)} ({_num(c['rating'], 'd')}) |"
                )
        if len(items) > per_leaf:
            out.append(f"\n{len(items) - per_leaf} more in `results.json`.")
        out.append("")
    return out + ["</details>"]


def gates_lines(results: dict) -> list[str]:
    g = results.get("gates") or {}
    if not g.get("active"):
        return ["Gates: none configured (the comparison is reported, nothing is enforced).", ""]
    if g.get("passed"):
        n = len(g.get("checks") or [])
        return [f"Gates: **passed** ({n} check{'s' if n != 1 else ''}, rule `{g['config']['rule']}`).", ""]
    lines = ["Gates: **failed**:", ""]
    lines += [f"- {cell(f['message'], 500)}" for f in g.get("failures") or []]
    return lines + [""]


def render_markdown(results: dict, *, plot: str | None = None, details: bool = True, heading: str = "##") -> str:
    """The evaluation as Markdown: summary, gates, one table per metric, the plot."""
    models = results.get("models") or {}
    tax = results.get("taxonomy") or {}
    settings = results.get("settings") or {}
    boot = settings.get("bootstrap") or {}
    where = (
        f"the leaves changed between `{cell(tax.get('base'))}` and `{cell(tax.get('head'))}`"
        if tax.get("base")
        else f"every leaf of `{cell(tax.get('head'))}`"
    )
    lines = [
        f"{heading} Evaluation: candidate vs baseline",
        "",
        f"Candidate `{cell(models.get('candidate', {}).get('id'))}` against baseline "
        f"`{cell(models.get('baseline', {}).get('id'))}` on {where}, plus unchanged leaves sampled"
        " (seeded) as a regression guard.",
    ]
    if results.get("teacher"):
        lines.append(f"Questions written by `{cell(results['teacher']['id'])}`.")
    if results.get("judge"):
        lines.append(
            f"Answers rated by `{cell(results['judge']['id'])}` (rubric `{cell(results['judge'].get('rubric'))}`)."
        )
    lines += [
        "",
        f"Delta = candidate − baseline on the same questions. The 95% interval is a paired bootstrap over the"
        f" questions ({boot.get('resamples', '?')} resamples): a leaf whose interval lies above zero improved,"
        " below zero regressed; one that spans zero shows no clear change at this number of questions.",
        "",
        *gates_lines(results),
    ]
    lines += _section(results, "knowledge", details)
    lines += _section(results, "skills", details)
    if plot:
        lines += [f"![per-leaf deltas with 95% intervals]({plot})", ""]
    skipped = results.get("skipped") or []
    if skipped:
        lines += ["Not evaluated:", ""]
        lines += [f"- `{cell(_leaf_name(s['leaf']), 200)}` ({s['role']}): {cell(s['reason'], 300)}" for s in skipped]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def plot_deltas(results: dict, out: Path) -> Path | None:
    """One PNG: per metric, each leaf's delta with its 95% interval (changed leaves
    first, then the guard). None when there is nothing to plot."""
    panels = []
    for metric in ("knowledge", "skills"):
        rows = [r for r in (results.get(metric) or {}).get("leaves") or [] if r.get("delta") is not None]
        if rows:
            rows.sort(key=lambda r: (r["role"] != "changed", r["leaf"]))
            panels.append((metric, rows))
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    heights = [max(1.6, 0.45 * len(rows) + 1.0) for _, rows in panels]
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(8, sum(heights)), dpi=110, squeeze=False, gridspec_kw={"height_ratios": heights}
    )
    for ax, (metric, rows) in zip(axes[:, 0], panels):
        ys = list(range(len(rows)))[::-1]
        deltas = [r["delta"] for r in rows]
        lo = [r["delta"] - (r["ci"][0] if r.get("ci") else r["delta"]) for r in rows]
        hi = [(r["ci"][1] if r.get("ci") else r["delta"]) - r["delta"] for r in rows]
        colors = ["#1f77b4" if r["role"] == "changed" else "#999999" for r in rows]
        ax.barh(ys, deltas, color=colors, alpha=0.8)
        ax.errorbar(deltas, ys, xerr=[lo, hi], fmt="none", ecolor="black", capsize=3, lw=1)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(ys)
        ax.set_yticklabels(
            [f"{_leaf_name(r['leaf'])[-48:]}{'' if r['role'] == 'changed' else ' (guard)'}" for r in rows], fontsize=7
        )
        ax.set_xlabel(f"delta in {LABELS[metric][1]}, candidate − baseline")
        ax.set_title(LABELS[metric][0], fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, out)  # whole or not at all
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return out
