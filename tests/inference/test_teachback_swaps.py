"""Two of a concept's terms swapped in an explanation: heard by the words, asked about as a choice of the two terms,
and the student's reply read for the one they keep."""

from __future__ import annotations

import pytest

from inference.teachback import _SWAP_STOP
from inference.teachback_swaps import Swap, clauses, picks, swap_probe, term_swaps

KEY_TERMS = (
    "A population is the whole group of people or things that we want to learn about.",
    "A sample is a subset of the population from which data are actually collected.",
    "A parameter is a number that describes the population, such as the mean of the whole population.",
    "A statistic is a number calculated from a sample, such as the sample mean.",
)
CENTRE = ("The mean is pulled toward an outlier, but the median is not.",
          "The median is the middle value once the data are sorted.")


def swaps(text: str, ideas: tuple[str, ...] = KEY_TERMS) -> list[tuple[int, str, str]]:
    return [(s.idea, s.right, s.wrong) for s in term_swaps(text, ideas, _SWAP_STOP)]


def test_a_sentence_that_says_of_one_term_what_an_idea_says_of_another_is_a_swap():
    assert swaps("A parameter is a number calculated from a sample, like the sample mean.") == [
        (3, "statistic", "parameter")]
    assert swaps("A statistic is a number that describes the whole population.") == [(2, "parameter", "statistic")]


def test_a_student_who_swaps_both_ways_is_heard_on_both_ideas():
    text = ("The parameter is the number you calculate from your sample, like the sample mean. The statistic is "
            "the number that describes the population, such as the mean of the whole population.")
    assert swaps(text) == [(2, "parameter", "statistic"), (3, "statistic", "parameter")]


@pytest.mark.parametrize("text", [
    "A statistic is a number calculated from a sample, like the sample mean.",  # right
    "We work out a statistic from our sample and use it to estimate the population parameter.",  # both, rightly
    "The parameter is not calculated from a sample: that is the statistic.",  # the mix-up, rejected
    "A parameter is a number.",  # too little of any idea said
])
def test_right_sentences_and_rejected_mix_ups_are_not_swaps(text):
    assert swaps(text) == []


def test_each_clause_of_a_key_idea_is_a_claim_about_its_own_term():
    # "The mean is pulled toward an outlier, but the median is not": two claims, so the median may be swapped in.
    assert swaps("The median gets pulled toward an outlier.", CENTRE) == [(0, "mean", "median")]
    assert swaps("The median is not pulled toward an outlier.", CENTRE) == []


def test_formulas_are_not_words_of_a_claim():
    ideas = ("The slope $m = \\frac{y_2 - y_1}{x_2 - x_1}$ is the rise over the run.",
             "The intercept is where the line crosses the vertical axis.")
    assert swaps("The intercept is the rise over the run.", ideas) == [(0, "slope", "intercept")]
    assert clauses("A is this; B is that, but C is not - D is.") == ["A is this", "B is that", "C is not", "D is."]


@pytest.mark.parametrize("reply, kept", [
    ("Oh, I meant statistic.", "statistic"),
    ("The statistic, not the parameter.", "statistic"),
    ("Not the statistic, the parameter!", "parameter"),
    ("Parameter, I think", "parameter"),
    ("It isn't the parameter. Statistics come from samples.", "statistic"),
    ("Yes.", None),
    ("I'm not sure.", None),
])
def test_the_reply_to_which_term_keeps_the_first_term_not_ruled_out_by_a_negation(reply, kept):
    assert picks(reply, "statistic", "parameter") == kept


def test_the_beginner_quotes_the_clause_and_offers_the_two_terms_in_alphabetical_order():
    probe = swap_probe(Swap(idea=3, right="statistic", wrong="parameter", sentence="A parameter comes from a sample"))
    assert probe == ("Wait, you said \u201cA parameter comes from a sample.\u201d Is that \u201cparameter\u201d or "
                     "\u201cstatistic\u201d? I mix those two words up.")
    long = swap_probe(Swap(idea=0, right="b", wrong="a", sentence="word " * 100))
    assert len(long) < 320 and "\u2026\u201d" in long
