"""A teach-back explanation as learner-model evidence: weak, never un-masters alone, brings review forward."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from learner_model.knowledge import BKTParams, ConceptState, KnowledgeState, posterior
from learner_model.policy import CourseModel, LearnerState, Step, TeachingSettings, TutorPolicy
from learner_model.review import ReviewSchedule
from learner_model.select import ConceptNode, ItemChoice

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
GRAPH = (ConceptNode("power", "Power rule", (), 0),)
PARAMS = {"power": BKTParams(p_init=0.2, p_learn=0.2, p_guess=0.2, p_slip=0.1)}
ITEMS = (ItemChoice("power-1", "power", 0.0),)


def policy() -> TutorPolicy:
    return TutorPolicy(CourseModel(GRAPH, ITEMS, PARAMS, TeachingSettings()))


def state_at(p_known: float) -> LearnerState:
    return LearnerState(knowledge=KnowledgeState(concepts={"power": ConceptState(p_known=p_known)}))


def test_a_poor_explanation_never_unmasters_a_concept_on_its_own() -> None:
    state = state_at(0.96)
    for _ in range(20):
        policy().record_explanation(state, "power", covered=0.0, now=NOW)
    assert state.knowledge.mastery("power") >= TeachingSettings().mastery


def test_an_explanation_is_weaker_evidence_than_a_graded_item() -> None:
    by_explanation, by_item = state_at(0.5), state_at(0.5)
    policy().record_explanation(by_explanation, "power", covered=1.0, now=NOW)
    policy().record(by_item, Step("learn", "power", "power-1", 0.5, True, ""), True, NOW)
    gain_explanation = by_explanation.knowledge.mastery("power") - 0.5
    assert 0 < gain_explanation < by_item.knowledge.mastery("power") - 0.5
    assert gain_explanation == posterior(0.5, True, PARAMS["power"], TeachingSettings().explanation_weight) - 0.5
    worse = state_at(0.5)
    policy().record_explanation(worse, "power", covered=0.4, now=NOW)
    assert worse.knowledge.mastery("power") < 0.5


def test_an_explanation_does_not_count_as_an_answered_item() -> None:
    state = state_at(0.5)
    policy().record_explanation(state, "power", covered=1.0, now=NOW)
    assert state.knowledge.concepts["power"].attempts == 0


def test_missing_key_ideas_bring_the_review_forward_in_proportion() -> None:
    full, half = ReviewSchedule(), ReviewSchedule()
    for schedule in (full, half):
        schedule.start("power", NOW)
    due = full.cards["power"].due
    full_state, half_state = LearnerState(reviews=full), LearnerState(reviews=half)
    policy().record_explanation(full_state, "power", covered=1.0, now=NOW)
    policy().record_explanation(half_state, "power", covered=0.5, now=NOW)
    assert full.cards["power"].due == due
    assert half.cards["power"].due == NOW + (due - NOW) * 0.5
    none = ReviewSchedule()
    none.start("power", NOW)
    policy().record_explanation(LearnerState(reviews=none), "power", covered=0.0, now=NOW)
    assert none.cards["power"].due == NOW + (due - NOW) * TeachingSettings().explanation_review_floor


def test_bringing_forward_leaves_an_overdue_or_unscheduled_concept_alone() -> None:
    schedule = ReviewSchedule()
    schedule.bring_forward("power", NOW, 0.5)  # not scheduled
    assert schedule.cards == {}
    schedule.start("power", NOW)
    later = schedule.cards["power"].due + timedelta(days=1)
    schedule.bring_forward("power", later, 0.1)
    assert schedule.cards["power"].due < later  # already due: untouched
