"""Paired deltas and bootstrap intervals (lab_ci.eval.stats)."""

from __future__ import annotations

import random

import pytest

from lab_ci.eval.stats import EMPTY, grouped, paired, stratified


def test_paired_means_delta_and_a_reproducible_interval():
    c = [8, 9, 7, 9, 8, 10]
    b = [5, 6, 7, 4, 6, 5]
    r = paired(c, b, seed=3, salt="leaf")
    assert r.n == 6
    assert r.candidate == pytest.approx(51 / 6) and r.baseline == pytest.approx(33 / 6)
    assert r.delta == pytest.approx(3.0)
    assert r.ci_low <= r.delta <= r.ci_high
    assert r.ci_low > 0  # every question but one improved: the interval excludes zero
    assert paired(c, b, seed=3, salt="leaf") == r  # same seed, same draws
    rng = random.Random(5)
    c2, b2 = [rng.random() for _ in range(20)], [rng.random() for _ in range(20)]
    assert paired(c2, b2, seed=3).ci_low != paired(c2, b2, seed=4).ci_low  # another seed, other draws
    assert paired(c2, b2, seed=3, salt="a").ci_low != paired(c2, b2, seed=3, salt="b").ci_low


def test_identical_differences_give_a_zero_width_interval_and_empty_input_nothing():
    r = paired([1, 1, 1], [0, 0, 0])
    assert (r.delta, r.ci_low, r.ci_high) == (1.0, 1.0, 1.0)
    assert paired([], []) == EMPTY
    assert EMPTY.to_dict()["ci"] is None
    with pytest.raises(ValueError):
        paired([1], [1, 2])


def test_interval_narrows_with_more_questions():
    rng = random.Random(0)
    widths = []
    for n in (10, 160):
        c = [float(rng.random() < 0.7) for _ in range(n)]
        b = [float(rng.random() < 0.5) for _ in range(n)]
        r = paired(c, b)
        widths.append(r.ci_high - r.ci_low)
    assert widths[1] < widths[0] / 2.5  # ~1/sqrt(16) = 1/4 in theory


def test_interval_covers_the_true_delta_about_95_percent_of_the_time():
    """The property the docs promise: 300 synthetic leaves of 30 paired right/wrong
    answers (candidate right with p 0.7, baseline 0.5, true delta 0.2); the percentile
    interval contains 0.2 in 0.88-0.99 of them (binomial noise around the nominal
    0.95; percentile intervals run a little under nominal at n=30)."""
    rng = random.Random(1)
    covered = 0
    trials = 300
    for t in range(trials):
        c = [float(rng.random() < 0.7) for _ in range(30)]
        b = [float(rng.random() < 0.5) for _ in range(30)]
        r = paired(c, b, seed=t, resamples=1000)
        covered += r.ci_low <= 0.2 <= r.ci_high
    assert 0.88 <= covered / trials <= 0.99, covered / trials


def test_grouped_weighs_every_leaf_the_same():
    leaves = {
        "a": ([1.0] * 100, [0.0] * 100),  # delta 1 on 100 questions
        "b": ([0.0, 0.0], [0.0, 0.0]),  # delta 0 on 2
        "empty": ([], []),  # left out
    }
    g = grouped(leaves, seed=1)
    assert g.delta == pytest.approx(0.5) and g.n == 102
    assert g.ci_low == pytest.approx(0.5) and g.ci_high == pytest.approx(0.5)  # no variance within leaves
    assert grouped({}) == EMPTY
    mean, lo, hi = stratified({"a": [1.0, 0.0], "b": [1.0, 1.0]}, seed=2)
    assert mean == pytest.approx(0.75) and lo <= mean <= hi
