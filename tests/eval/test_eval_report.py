"""The Markdown section and the delta plot read only results.json's mapping."""

from __future__ import annotations

from lab_ci.eval.gates import Gates, MetricGates, apply_gates
from lab_ci.eval.report import cell, plot_deltas, render_markdown, verdict


def leaf(path, role, delta, ci, items=()):
    return {
        "leaf": path,
        "role": role,
        "status": "evaluated" if delta is not None else "unevaluated",
        "reason": "" if delta is not None else "no answer pair was rated by the judge",
        "n": 6 if delta is not None else 0,
        "baseline": 0.4,
        "candidate": None if delta is None else 0.4 + delta,
        "delta": delta,
        "ci": ci,
        "items": list(items),
    }


def sample_results():
    hostile = "Ignore <script>alert(1)</script> | @maintainers\nnew line"
    k_items = [
        {
            "id": "s0",
            "question": hostile,
            "options": ["right", "w1", "w2", "w3"],
            "answer": 0,
            "candidate": {"choice": 0, "correct": True, "scores": [-1, -2, -3, -4]},
            "baseline": {"choice": 2, "correct": False, "scores": [-2, -2, -1, -4]},
        }
    ]
    s_items = [
        {
            "question": "Antonym of hot?",
            "reference": "cold",
            "candidate": {"answer": "cold", "rating": 9, "judgment": "ok", "error": ""},
            "baseline": {"answer": "", "rating": None, "judgment": "", "error": "x"},
        }
    ]
    r = {
        "taxonomy": {"base": "main", "head": "HEAD"},
        "models": {"candidate": {"id": "hf:aa:cand"}, "baseline": {"id": "hf:bb:base"}},
        "teacher": {"id": "gguf:cc:teacher.gguf", "name": "t"},
        "judge": {"id": "gguf:cc:teacher.gguf", "name": "t", "rubric": "abc"},
        "settings": {"bootstrap": {"resamples": 2000, "confidence": 0.95}},
        "knowledge": {
            "leaves": [leaf("knowledge/a/qna.yaml", "changed", 0.5, [0.2, 0.8], k_items)],
            "changed": {"n": 6, "candidate": 0.9, "baseline": 0.4, "delta": 0.5, "ci": [0.2, 0.8], "leaves": 1},
            "guard": {"n": 0, "candidate": None, "baseline": None, "delta": None, "ci": None, "leaves": 0},
        },
        "skills": {
            "leaves": [
                leaf("skills/b/qna.yaml", "changed", -2.0, [-3.0, -1.0], s_items),
                leaf("skills/c/qna.yaml", "guard", 0.1, [-0.5, 0.7]),
                leaf("skills/d/qna.yaml", "changed", None, None),
            ],
            "changed": {"n": 6, "candidate": 4, "baseline": 6, "delta": -2.0, "ci": [-3.0, -1.0], "leaves": 1},
            "guard": {"n": 6, "candidate": 5.1, "baseline": 5, "delta": 0.1, "ci": [-0.5, 0.7], "leaves": 1},
        },
        "skipped": [{"leaf": "skills/e/qna.yaml", "role": "changed", "reason": "cannot read YAML"}],
    }
    r["gates"] = apply_gates(r, Gates(skills=MetricGates(max_leaf_drop=1.0))).to_dict()
    return r


def test_markdown_shows_tables_verdicts_gates_and_what_was_not_evaluated():
    md = render_markdown(sample_results(), plot="deltas.png")
    assert "## Evaluation: candidate vs baseline" in md
    assert "| `knowledge/a` | changed | 6 | 0.40 | 0.90 | +0.50 | +0.20 to +0.80 | improved |" in md
    assert "| `skills/b` | changed | 6 | 0.40 | -1.60 | -2.00 | -3.00 to -1.00 | regressed |" in md
    assert "| `skills/c` | guard | 6 | 0.40 | 0.50 | +0.10 | -0.50 to +0.70 | no clear change |" in md
    assert "not evaluated (no answer pair was rated by the judge)" in md
    assert "| **regression guard (mean)** | guard | 6 | 5.00 | 5.10 | **+0.10** |" in md
    assert "Gates: **failed**" in md and "skills/b/qna.yaml" in md and "skills.max_leaf_drop" in md
    assert "skills/d/qna.yaml: not evaluated" in md  # unevaluated changed leaf fails by default
    assert "![per-leaf deltas with 95% intervals](deltas.png)" in md
    assert "`skills/e` (changed): cannot read YAML" in md
    assert "✓" in md and "✗ (C)" in md


def test_contributor_and_model_text_cannot_break_the_markdown():
    md = render_markdown(sample_results())
    assert "<script>" not in md and "&lt;script&gt;" in md
    assert "@maintainers" not in md and "@\u200dmaintainers" in md
    assert "\\| " in md  # the pipe is escaped inside the cell
    assert cell("a\nb|c") == "a b\\|c" and len(cell("x" * 1000, 50)) == 50


def test_verdict_words():
    assert verdict({"delta": 0.3, "ci": [0.1, 0.5]}) == "improved"
    assert verdict({"delta": -0.3, "ci": [-0.5, -0.1]}) == "regressed"
    assert verdict({"delta": 0.1, "ci": [-0.1, 0.3]}) == "no clear change"
    assert verdict({"delta": None, "ci": None}) == "not evaluated"


def test_plot_is_a_png_and_nothing_is_plotted_without_deltas(tmp_path):
    out = plot_deltas(sample_results(), tmp_path / "deltas.png")
    assert out and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 2000
    empty = {"knowledge": {"leaves": []}, "skills": {"leaves": [leaf("s", "changed", None, None)]}}
    assert plot_deltas(empty, tmp_path / "none.png") is None and not (tmp_path / "none.png").exists()
