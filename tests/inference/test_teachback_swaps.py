"""Two of a concept's terms swapped in an explanation: heard by the words, asked about as a choice of the two terms,
and the student's reply read for the one they keep."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def swaps(text: str, ideas: tuple[str, ...] = KEY_TERMS, topic: str = "") -> list[tuple[int, str, str]]:
    return [(s.idea, s.right, s.wrong) for s in term_swaps(text, ideas, _SWAP_STOP, topic=topic)]


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


def test_two_words_of_a_claim_in_each_others_places_are_an_exchange_but_a_reworded_phrase_is_not():
    ideas = ("If a function is differentiable at a point, then it is continuous at that point.",
             "The average rate of change is the change in output divided by the change in input.")
    [swap] = term_swaps("If a function is continuous at a point, it is differentiable there.", ideas, _SWAP_STOP)
    assert (swap.idea, swap.right, swap.wrong, swap.kind) == (0, "differentiable", "continuous", "exchanged")
    assert swaps("It's the change in input divided by the change in output.", ideas, topic="Average rate of change") \
        == [(1, "output", "input")]
    # the same words in another order that says the same thing: two neighbours, not two words exchanged
    assert swaps("A statistic from the sample estimates the population's parameter.",
                 ("A statistic from a sample is used to estimate the parameter of the population.",)) == []


def test_a_claim_of_three_words_or_fewer_is_too_short_to_tell_a_swap_from_a_rewording():
    assert swaps("Continuous implies differentiable.", ("Differentiable implies continuous.",)) == []


def test_a_word_said_for_its_opposite_is_a_swap():
    ideas = ("The limit of a quotient is the quotient of the limits only when the limit of the denominator is not zero.",)
    assert swaps("The limit of a quotient is the quotient of the limits when the numerator's limit is not zero.",
                 ideas) == [(0, "denominator", "numerator")]


def test_terms_the_concepts_title_names_and_terms_after_an_opening_frame_can_be_swapped():
    shifts = ("A vertical shift adds $k$ to every output of the function.",
              "A horizontal shift moves every input of the function.")
    assert swaps("A horizontal shift adds $k$ to every output of the function.", shifts,
                 topic="Vertical and horizontal shifts") == [(0, "vertical", "horizontal")]
    notation = ("In interval notation, a bracket means the endpoint is included.",
                "In interval notation, a parenthesis means the endpoint is not included.")
    assert swaps("A parenthesis means the endpoint is included.", notation, topic="Interval notation") == [
        (0, "bracket", "parenthesis")]


def test_formulas_are_not_words_of_a_claim():
    ideas = ("The slope $m = \\frac{y_2 - y_1}{x_2 - x_1}$ is the rise over the run between two points of the line.",
             "The intercept is where the line crosses the vertical axis.")
    assert swaps("The intercept is the rise over the run between two points of the line.", ideas) == [
        (0, "slope", "intercept")]
    assert clauses("A is this; B is that, but C is not \u2014 D is.") == ["A is this;", "B is that", "C is not", "D is."]
    assert clauses("It repeats, like 0.333... Every integer is rational.") == [
        "It repeats, like 0.333...", "Every integer is rational."]
    assert clauses("Take (f(b) - f(a)) / (b - a), because $y_2 - y_1$ is the rise.") == [
        "Take (f(b) - f(a)) / (b - a)", "$y_2 - y_1$ is the rise."]


@pytest.mark.parametrize("reply, kept", [
    ("Oh, I meant statistic.", "statistic"),
    ("The statistic, not the parameter.", "statistic"),
    ("Not the statistic, the parameter!", "parameter"),
    ("Parameter, I think", "parameter"),
    ("It isn't the parameter. Statistics come from samples.", "statistic"),
    ("Yes.", None),
    ("I'm not sure.", None),
    ("Oops, I mixed them up.", "statistic"),
    ("It's the other way round.", "statistic"),
])
def test_the_reply_to_which_term_keeps_the_first_term_not_ruled_out_by_a_negation(reply, kept):
    assert picks(reply, "statistic", "parameter") == kept


@pytest.mark.parametrize("reply, kept", [
    ("No, continuous implies differentiable, like I said.", "continuous"),
    ("Yes, differentiable implies continuous.", "differentiable"),
    ("Yes.", "differentiable"),
    ("Nope.", "continuous"),
    ("No, it's the other way round.", "differentiable"),
    ("Hmm.", None),
])
def test_to_the_other_way_round_question_a_bare_yes_or_no_counts(reply, kept):
    assert picks(reply, "differentiable", "continuous", exchanged=True) == kept


def test_the_beginner_quotes_the_clause_and_offers_the_two_terms_in_alphabetical_order():
    probe = swap_probe(Swap(idea=3, right="statistic", wrong="parameter", sentence="A parameter comes from a sample"))
    assert probe == ("Wait, you said \u201cA parameter comes from a sample.\u201d Is that \u201cparameter\u201d or "
                     "\u201cstatistic\u201d? I mix those two words up.")
    exchanged = swap_probe(Swap(idea=0, right="differentiable", wrong="continuous",
                                sentence="continuous implies differentiable", kind="exchanged"))
    assert exchanged == ("Wait, you said \u201cContinuous implies differentiable.\u201d Or is it the other way round? "
                         "I mix up \u201ccontinuous\u201d and \u201cdifferentiable\u201d.")
    long = swap_probe(Swap(idea=0, right="b", wrong="a", sentence="word " * 100))
    assert len(long) < 320 and "\u2026\u201d" in long


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=400), reply=st.text(max_size=80),
       ideas=st.lists(st.text(max_size=120), min_size=1, max_size=5), topic=st.text(max_size=40))
def test_any_text_gives_swaps_on_real_ideas_and_any_reply_is_read_without_error(text, reply, ideas, topic):
    # what a student types reaches this before any screen does (an answer to the beginner is screened lightly)
    found = term_swaps(text, ideas, _SWAP_STOP, topic=topic)
    assert all(0 <= s.idea < len(ideas) and s.sentence for s in found)
    assert len({s.idea for s in found}) == len(found)
    for swap in found:
        assert swap_probe(swap).startswith("Wait, you said")
        assert picks(reply, swap.right, swap.wrong, exchanged=swap.kind == "exchanged") in (swap.right, swap.wrong, None)
    assert picks(reply, "statistic", "parameter") in ("statistic", "parameter", None)


_VOCABULARY = sorted({w.strip(".,") for idea in KEY_TERMS + CENTRE for w in idea.split()} | {"not"})


@st.composite
def garbled_ideas(draw: st.DrawFn) -> str:
    """Key ideas as a student might garble them: a word replaced by another of theirs, two words exchanged."""
    sentences = []
    for _ in range(draw(st.integers(1, 4))):
        words = draw(st.sampled_from(KEY_TERMS + CENTRE)).split()
        i, j = draw(st.integers(0, len(words) - 1)), draw(st.integers(0, len(words) - 1))
        if draw(st.booleans()):
            words[i] = draw(st.sampled_from(_VOCABULARY))
        else:
            words[i], words[j] = words[j], words[i]
        sentences.append(" ".join(words))
    return " ".join(sentences)


@settings(max_examples=300, deadline=None)
@given(text=garbled_ideas(), reply=st.lists(st.sampled_from(_VOCABULARY), max_size=12))
def test_garbled_key_ideas_give_well_formed_swaps(text, reply):
    ideas = KEY_TERMS + CENTRE
    for swap in term_swaps(text, ideas, _SWAP_STOP, topic="Key terms"):
        assert 0 <= swap.idea < len(ideas) and swap.right != swap.wrong and swap.kind in ("substituted", "exchanged")
        assert swap.wrong.lower() in swap.sentence.lower()
        assert picks(" ".join(reply), swap.right, swap.wrong, swap.kind == "exchanged") in (swap.right, swap.wrong,
                                                                                            None)
