"""experiments.spread: do several policies differ beyond the courses' noise?"""
import numpy as np
import pytest

from experiments.spread import format_spread, spread

rng = np.random.default_rng(7)
COURSES = rng.normal(10.0, 5.0, size=(1, 32))  # some courses are much harder than others, for every policy


def noisy(policies, gain=0.0, sd=3.5, seed=1):
    """Scores of ``policies`` on the same 32 courses; policy i is ``gain * i`` metres better."""
    noise = np.random.default_rng(seed).normal(0.0, sd, size=(policies, 32))
    return COURSES + noise + gain * np.arange(policies)[:, None]


def test_policies_that_are_one_policy_show_no_difference_and_the_luck_of_the_best():
    result = spread(noisy(14))
    assert result.p_value > 0.05 and 0.5 < result.ratio < 2.0
    # the best of 14 normal means of s.e. 3.5/sqrt(32) leads by about 1.7 s.e. by luck
    assert result.luck == pytest.approx(1.70 * 3.5 / np.sqrt(32), rel=0.15)
    assert "no difference beyond it" in format_spread(result)


def test_a_real_difference_is_found_and_the_best_leads_beyond_luck():
    result = spread(noisy(14, gain=0.5))
    assert result.p_value == pytest.approx(1 / (1 + result.permutations)) and result.ratio > 5
    assert result.lead > 2 * result.luck
    assert "they differ beyond it" in format_spread(result)


def test_the_courses_difficulty_does_not_count_as_a_difference():
    scores = noisy(5, gain=0.3)
    shifted = scores + rng.normal(0.0, 20.0, size=(1, 32))  # the same gaps on other courses
    a, b = spread(scores), spread(shifted)
    assert a.ratio == pytest.approx(b.ratio) and a.p_value == b.p_value and a.lead == pytest.approx(b.lead)


def test_too_few_to_say():
    assert spread(np.ones((1, 32))) is None and spread(np.ones((5, 1))) is None
    same = spread(np.tile(COURSES, (3, 1)))  # identical policies: nothing to spread
    assert same.ratio == 1.0 and same.lead == pytest.approx(0.0, abs=1e-9) and same.p_value == 1.0
