"""Pure parsing and similarity helpers."""

import pytest

from lab_ci.sdg.text import FieldSpec, Unparseable, parse_fields, render, rouge_l, template_vars, token_f1


def spec(name, **cfg):
    return FieldSpec.from_config(name, cfg)


def test_render_replaces_variables_and_names_missing_ones():
    assert render("Q: {{ question }} / {{answer}}", {"question": "a", "answer": 1}) == "Q: a / 1"
    assert template_vars("{{a}} {{ b }}") == {"a", "b"}
    with pytest.raises(KeyError) as e:
        render("{{nope}}", {})
    assert e.value.args[0] == "nope"


def test_markers_cut_fields_and_stop_at_other_markers():
    text = "junk [QUESTION]\n What is 2+2? \n[ANSWER] four [END] trailing"
    got = parse_fields(
        text, [spec("question", start="[QUESTION]", end=["[ANSWER]"]), spec("answer", start="[ANSWER]", end="[END]")]
    )
    assert got == {"question": "What is 2+2?", "answer": "four"}


def test_missing_start_marker_takes_text_before_end_marker():
    got = parse_fields(
        "Why is the sky blue?\n[ANSWER] Rayleigh.", [spec("question", start="[QUESTION]", end="[ANSWER]")]
    )
    assert got["question"] == "Why is the sky blue?"


def test_unparseable_text_raises_unparseable_not_other_errors():
    for text in ("", "   ", "no tags at all", "[ANSWER]"):
        with pytest.raises(Unparseable):
            parse_fields(text, [spec("answer", start="[ANSWER]", end="[END]")])


def test_fallback_whole_uses_the_whole_completion():
    assert parse_fields("  just a question?  ", [spec("q", start="[Q]", fallback="whole")]) == {"q": "just a question?"}


def test_scores_and_choices():
    s = spec("score", regex=[r"(?i)score\W{0,5}([0-3])\b", r"\b([0-3])\b"], type="int")
    assert parse_fields("Looks fine.\nScore: 3", [s]) == {"score": 3}
    assert parse_fields("I give it 2 points", [s]) == {"score": 2}
    with pytest.raises(Unparseable):
        parse_fields("Score: nine", [s])
    v = spec("verdict", regex=[r"(?i)verdict\W{0,5}(yes|no)\b"], choices=["YES", "NO"])
    assert parse_fields("Verdict: yes.", [v]) == {"verdict": "YES"}
    with pytest.raises(Unparseable):
        parse_fields("Verdict: maybe", [v])


def test_max_chars_rejects_run_on_fields():
    with pytest.raises(Unparseable, match="longer"):
        parse_fields("[Q]" + "x" * 50, [spec("q", start="[Q]", max_chars=10)])


def test_token_f1_and_rouge_l():
    assert token_f1("the cat sat", "the cat sat") == 1.0
    assert token_f1("dog", "the cat sat") == 0.0
    assert 0 < token_f1("the cat", "the cat sat") < 1
    assert rouge_l("a b c d", "a b c d") == 1.0
    # LCS of (a c d) vs (a b c d) is 3 -> P=1, R=0.75
    assert rouge_l("a c d", "a b c d") == pytest.approx(2 * 1 * 0.75 / 1.75)
    assert rouge_l("", "x") == 0.0


def test_values_made_only_of_tags_are_unparseable_and_stray_tags_are_removed():
    q = spec("question", start="[Start of Question]", end=["[End of Question]"], fallback="whole")
    with pytest.raises(Unparseable):
        parse_fields("[End of Question]\n[Start of Question]", [q])
    assert parse_fields("Why? [End of Question] [End of Question]", [q]) == {"question": "Why?"}
