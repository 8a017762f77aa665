"""The release: model, GGUF export, loss plot and a model card with provenance."""

from __future__ import annotations

import html
import json
from pathlib import Path


def plot_losses(metrics: dict[str, list[dict]], out: Path) -> Path | None:
    """One PNG with each phase's training loss against the global step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=110)
    offset = 0
    drew = False
    for phase, rows in metrics.items():
        pts = [(r["step"], r["loss"]) for r in rows if "loss" in r and "step" in r]
        if not pts:
            continue
        xs = [offset + s for s, _ in pts]
        ax.plot(xs, [l for _, l in pts], label=phase)
        offset = xs[-1]
        drew = True
    if not drew:
        plt.close(fig)
        return None
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss (assistant tokens)")
    ax.set_title("lab-ci build: loss per phase")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def _md(text: str, limit: int = 400) -> str:
    """Escape text for a Markdown table cell (no HTML, no pipes, no mentions)."""
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    text = html.escape(text, quote=False).replace("|", "\\|").replace("\n", " ")
    return text.replace("@", "@\u200d")


def model_card(provenance: dict, postcheck_rows: list[dict], loss_png: str | None) -> str:
    p = provenance
    lines = [
        f"# {p.get('name', 'lab-ci release')}",
        "",
        "A student model trained by `lab-ci build` with the LAB method (phased training on"
        " synthetic data generated from the taxonomy).",
        "",
        "## Provenance",
        "",
        f"- Taxonomy commit: `{p['taxonomy']['commit']}`",
        f"- Leaves: {len(p['taxonomy']['leaves'])} (blob ids in `release.json`)",
        *[f"  - `{_md(l['path'], 200)}` (`{(l.get('blob') or '')[:12]}`)" for l in p["taxonomy"]["leaves"][:200]],
        f"- Teacher: `{p['teacher']['id']}`",
        f"- Base student: `{p['student']['base']}`",
        f"- lab-ci: {p['lab_ci_version']}",
        "",
        "## Data",
        "",
        "| phase | samples | by source | characters | sha256 |",
        "|---|---|---|---|---|",
    ]
    for ph in p["datasets"]:
        src = ", ".join(f"{k}: {v}" for k, v in ph["stats"]["by_source"].items())
        lines.append(
            f"| {ph['phase']} | {ph['stats']['samples']} | {src} | {ph['stats'].get('chars', '?')} | `{ph['sha256']}` |"
        )
    gen = p.get("generation") or []
    if gen:
        lines += ["", "Generated samples per leaf (accepted / target, rejected by the judges):", ""]
        lines += [
            f"- `{_md(g['leaf'], 200)}` ({g['kind']}): {g['samples']}/{g.get('target', '?')}, {g['rejected']} rejected"
            for g in gen
        ]
    lines += ["", "## Training", "", "```json", json.dumps(p["hyperparameters"], indent=2, sort_keys=True), "```", ""]
    for ph in p.get("training", []):
        first, last = ph.get("first_loss"), ph.get("final_loss")
        fmt = lambda v: f"{v:.4f}" if isinstance(v, (int, float)) else "?"  # noqa: E731
        lines.append(f"- {ph['phase']}: {ph.get('steps', '?')} steps, loss {fmt(first)} → {fmt(last)}")
    if loss_png:
        lines += ["", f"![training loss]({loss_png})"]
    lines += ["", "## Postcheck: seed questions of the changed leaves", ""]
    if not postcheck_rows:
        lines.append("No changed leaves to check.")
    else:
        mean_b = sum(r["score_before"] for r in postcheck_rows) / len(postcheck_rows)
        mean_a = sum(r["score_after"] for r in postcheck_rows) / len(postcheck_rows)
        lines += [
            "Each seed question answered by the base student (before) and the trained model (after),"
            " greedy decoding. Agreement: token F1 with the contributor's answer (0-1).",
            "",
            f"Mean agreement over {len(postcheck_rows)} questions: before {mean_b:.2f}, after {mean_a:.2f}.",
        ]
        by_leaf: dict[str, list[dict]] = {}
        for r in postcheck_rows:
            by_leaf.setdefault(r["leaf"], []).append(r)
        for leaf, rows in by_leaf.items():
            lb = sum(r["score_before"] for r in rows) / len(rows)
            la = sum(r["score_after"] for r in rows) / len(rows)
            lines += [
                "",
                f"### `{_md(leaf, 200)}`",
                "",
                f"Agreement: before {lb:.2f}, after {la:.2f} ({len(rows)} questions).",
                "",
                "| question | contributor's answer | before | after | agreement before | agreement after |",
                "|---|---|---|---|---|---|",
            ]
            for r in rows:
                lines.append(
                    f"| {_md(r['question'])} | {_md(r['reference'])} | {_md(r['before'])} "
                    f"| {_md(r['after'])} | {r['score_before']:.2f} | {r['score_after']:.2f} |"
                )
    lines += ["", "## Files", "", "- `model/`: safetensors weights + tokenizer (Hugging Face format)"]
    if p.get("gguf"):
        lines.append(f"- `{p['gguf']}`: GGUF for llama.cpp (usable as the next preview teacher)")
    lines += [
        "- `loss.png`, `metrics.json`: training loss per step and phase",
        "- `release.json`: full provenance (leaves with blob ids, generation per leaf, dataset hashes)",
    ]
    return "\n".join(lines) + "\n"
