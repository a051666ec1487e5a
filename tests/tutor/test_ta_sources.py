"""Which passages give an exercise's key away (`tutor.ta.sources.passage_reveals`), for keys that are words: a
multiple-choice answer the course also uses as a term is given away by its own problem's hints, not by every
passage that teaches the term. No database and no embedding model."""

from __future__ import annotations

from courses.format import ConceptSpec, CourseSpec, ItemSpec
from inference.retrieval import Chunk, chunk_document, course_documents
from inference.ta import StudentState
from tutor.ta.sources import course_text, keys_digest, passage_reveals

SAMPLING_METHODS = ["Simple random", "Stratified", "Cluster", "Convenience"]


def step(item_id: str, problem: str, prompt: str, answer: str, hints: list[str],
         choices: list[str] | None = None) -> ItemSpec:
    return ItemSpec(id=item_id, kind="multiple_choice", prompt=prompt, answer=answer,
                    choices=choices or SAMPLING_METHODS, hints=hints, extra={"oatutor": {"problem_id": problem}})


def sampling_course(stratified_in: tuple[str, ...] = ()) -> CourseSpec:
    """Sampling exercises whose keys are the names of the methods the course teaches, and one problem in two steps
    whose first answer is its own scenario's population. `stratified_in`: exercises whose hint also names the
    stratified method."""
    items = [
        step("voters-a", "voters", "A party phones voters picked from the roll by lottery. Which sampling is this?",
             "Simple random", ["Every voter on the roll had the same chance: this is simple random sampling."]),
        step("classes-a", "classes", "An instructor surveys five students from each class. Which sampling?",
             "Stratified", ["In simple random sampling every member has the same chance; here each class is a "
                            "stratum, so this is stratified sampling."]),
        step("houses-a", "houses", "A city surveys every house on ten randomly chosen streets. Which sampling?",
             "Cluster", ["Unlike simple random sampling, whole streets are chosen: this is cluster sampling."]),
        step("grads-a", "grads", "A college asks 200 of last year's graduates about their jobs. What is the "
                                 "population?", "All graduates of the college from last year",
             ["The population is everyone the study is about."],
             choices=["All graduates of the college from last year", "The 200 graduates asked"]),
        step("grads-b", "grads", "A college asks 200 of last year's graduates about their jobs. What is the "
                                 "sample?", "The 200 graduates asked",
             ["The population was all graduates of the college from last year; the sample is the part asked."],
             choices=["All graduates of the college from last year", "The 200 graduates asked"]),
    ]
    for item in items:
        if item.id in stratified_in:
            item.hints.append("Choosing some from every group is stratified sampling.")
    concept = ConceptSpec(slug="sampling", title="Sampling", lesson="Ways to choose a sample from a population.",
                          items=items)
    return CourseSpec(slug="stats", title="Statistics", concepts=[concept])


def judged(spec: CourseSpec) -> list[Chunk]:
    chunks = [c for d in course_documents(course_text(spec)) for c in chunk_document(d)]
    return passage_reveals(chunks, spec)


def hints_of(chunks: list[Chunk], item_id: str) -> list[Chunk]:
    return [c for c in chunks if c.item_id == item_id and c.kind == "hint"]


def test_a_choice_the_course_teaches_as_a_term_is_given_away_only_by_its_own_problem() -> None:
    chunks = judged(sampling_course())
    # "simple random" is taught in the hints of two other problems: those hints teach the term, they do not answer
    # the voters question, and a new student may be quoted them
    for other in ("classes-a", "houses-a"):
        assert all("voters-a" not in c.reveals for c in hints_of(chunks, other)), other
    tried_them = StudentState(attempted=frozenset({"classes-a", "houses-a"}))
    assert all(tried_them.may_quote(c) for c in hints_of(chunks, "classes-a") + hints_of(chunks, "houses-a"))
    assert all("voters-a" in c.reveals for c in hints_of(chunks, "voters-a"))  # its own hint still gives it away


def test_a_scenario_s_answer_stated_in_another_step_of_its_problem_is_still_given_away() -> None:
    chunks = judged(sampling_course())
    assert all("grads-a" in c.reveals for c in hints_of(chunks, "grads-b"))
    assert not StudentState(attempted=frozenset({"grads-b"})).may_quote(hints_of(chunks, "grads-b")[0])
    assert StudentState(attempted=frozenset({"grads-a", "grads-b"})).may_quote(hints_of(chunks, "grads-b")[0])


def test_a_key_that_becomes_a_term_when_another_hint_is_edited_judges_the_passages_again() -> None:
    before, after = sampling_course(("houses-a",)), sampling_course(("houses-a", "voters-a"))
    assert keys_digest(before) != keys_digest(after)  # "stratified" is now taught by two other problems
    assert any("classes-a" in c.reveals for c in hints_of(judged(before), "houses-a"))
    assert not any("classes-a" in c.reveals for c in hints_of(judged(after), "houses-a"))


def limits_course() -> CourseSpec:
    lesson = ("Near $x = 1$, $f(x) = \\frac{x^2 - 1}{x - 1}$ takes the values $1.9$, $1.99$ and $2.01$: its limit "
              "is $2$.\n\n**Worked example.** For $\\lim_{x \\to 2} \\frac{x^2 - 4}{x - 2}$, factor and cancel: "
              "the limit is $4$.")
    items = [ItemSpec(id="lim-4", kind="numeric", answer=4, prompt="Find $\\lim_{x \\to 2} \\frac{x^2 - 4}{x - 2}$."),
             ItemSpec(id="lim-1", kind="numeric", answer=1,
                      prompt="Find $\\lim_{x \\to -1} \\frac{x^2 + 3x + 2}{x + 1}$.",
                      hints=["Factor the top: $(x + 1)(x + 2)$.", "Cancel, then substitute: $-1 + 2 = 1$."])]
    return CourseSpec(slug="calc", title="Calculus", concepts=[
        ConceptSpec(slug="limits", title="Limits", lesson=lesson, items=items)])


def test_a_short_key_counts_where_a_passage_works_its_exercise_not_where_the_number_means_something_else() -> None:
    chunks = judged(limits_course())
    lesson = [c for c in chunks if c.kind == "lesson"]
    assert lesson and all("lim-1" not in c.reveals for c in lesson)  # "x = 1" is not lim-1's answer
    assert any("lim-4" in c.reveals for c in lesson)  # the worked example is lim-4 itself
    assert any("lim-1" in c.reveals for c in hints_of(chunks, "lim-1"))  # its own hint computes it


def fractions_course() -> CourseSpec:
    """Keys written as fractions: one whose value is a short number (13/52 is 0.25), one whose value is not (the
    derivative of the square root at 9, 1/6 = 0.1666...)."""
    cards = [ItemSpec(id="hearts", kind="symbolic", answer="(13/52)",
                      prompt="A card is drawn from a standard deck of $52$. What is the probability it is a heart?")]
    quartiles = ConceptSpec(slug="quartiles", title="Quartiles", lesson="The first quartile has a quarter below it.",
                            items=[ItemSpec(id="q1", kind="numeric", answer=3,
                                            prompt="The data are 1, 2, 3, 4, 5, 6, 7, 8. Find the first quartile.",
                                            hints=["A quarter of the data is $0.25$ of it: the second value up."])])
    slopes = ConceptSpec(slug="slopes", title="Slopes", lesson="A tangent line's slope is the derivative there.",
                         items=[ItemSpec(id="slope-9", kind="numeric", answer=1 / 6,
                                         prompt="Find the slope of $\\sqrt{x}$ at $x = 4$.",
                                         hints=["At $x = 9$ the slope is $\\frac{1}{6}$, at $4$ it is more."])])
    definition = ConceptSpec(slug="definition", title="The definition", lesson="The limit of difference quotients.",
                             items=[ItemSpec(id="root-9", kind="numeric", answer=1 / 6,
                                             prompt="Use the definition to find $f'(9)$ for $f(x) = \\sqrt{x}$.")])
    return CourseSpec(slug="mixed", title="Mixed", concepts=[
        ConceptSpec(slug="cards", title="Cards", lesson="Probabilities of draws.", items=cards),
        quartiles, slopes, definition])


def test_a_fraction_key_whose_value_is_a_short_number_is_not_given_away_by_that_number_elsewhere() -> None:
    chunks = judged(fractions_course())
    quartile_hint = hints_of(chunks, "q1")
    assert quartile_hint and all("hearts" not in c.reveals for c in quartile_hint)  # 0.25 of the data, not 13/52
    assert StudentState(attempted=frozenset({"q1"})).may_quote(quartile_hint[0])
    # a number whose plain value is long still counts anywhere: the slopes hint states root-9's answer
    assert all("root-9" in c.reveals for c in hints_of(chunks, "slope-9"))


def test_an_exercise_its_lesson_works_through_keeps_no_secret_and_the_others_still_do() -> None:
    worked = ItemSpec(id="worked", kind="numeric", answer=12,
                      prompt="A box holds 3 rows of 4 eggs each. How many eggs are in the box altogether?",
                      hints=["Each row holds 4 eggs.", "Three rows of four: $3 \\times 4 = 12$."])
    other = ItemSpec(id="other", kind="numeric", answer=35,
                     prompt="A tray holds 5 rows of 7 cups each. How many cups are on the tray altogether?",
                     hints=["Five rows of seven: $5 \\times 7 = 35$."])
    explanation = f"A worked example.\n\n{worked.prompt}\n\n*Step 1.* {worked.hints[0]}\n\n*Step 2.* {worked.hints[1]}"
    concept = ConceptSpec(slug="rows", title="Rows and columns", lesson="Multiply the rows by what each holds.",
                          explanation=explanation, items=[worked, other])
    spec = CourseSpec(slug="arith", title="Arithmetic", concepts=[concept])
    chunks = judged(spec)
    # every student reads the worked example before practising, so quoting it or its hints gives nothing away
    assert not any("worked" in c.reveals for c in chunks)
    assert StudentState(attempted=frozenset()).may_quote(next(c for c in chunks if c.kind == "explanation"))
    assert all("other" in c.reveals for c in hints_of(chunks, "other"))  # an exercise the lesson does not work
    unworked = CourseSpec(slug="arith", title="Arithmetic", concepts=[
        ConceptSpec(slug="rows", title="Rows and columns", lesson=concept.lesson, items=[worked, other])])
    assert keys_digest(unworked) != keys_digest(spec)  # an edit that adds or drops the worked example judges again


def test_a_short_key_in_its_own_hints_counts_where_it_is_a_result_not_where_its_number_is_a_given() -> None:
    slope = ItemSpec(id="slope-3", kind="numeric", answer=3, prompt="Find the slope through $(1, 3)$ and $(4, 12)$.",
                     hints=["Compute $\\frac{y_2 - y_1}{x_2 - x_1}$ with $(x_1, y_1) = (1, 3)$ and $(x_2, y_2) = (4, 12)$.",
                            "The rise is $12 - 3 = 9$ and the run is $4 - 1 = 3$, so the slope is 9 over 3.",
                            "So the slope is 3."])
    chunks = judged(CourseSpec(slug="lines", title="Lines", concepts=[
        ConceptSpec(slug="slopes", title="Slopes", lesson="Rise over run.", items=[slope])]))
    reveals = {c.title.rsplit("› ", 1)[-1]: c.reveals for c in hints_of(chunks, "slope-3")}
    assert reveals == {"Hint 1": (), "Hint 2": ("slope-3",), "Hint 3": ("slope-3",)}


def test_a_limits_value_after_an_arrow_is_a_result_and_the_variables_approach_is_not() -> None:
    limit = ItemSpec(id="lim-8", kind="numeric", answer=8, prompt="Find $\\lim_{h \\to 0} \\frac{(4 + h)^2 - 16}{h}$.",
                     hints=["Expand, then let $h \\to 8$ stand for nothing: only the algebra matters.",
                            "Simplify to $8 + h \\to 8$."])
    zero = ItemSpec(id="lim-0", kind="numeric", answer=0, prompt="Find $\\lim_{x \\to 0} x^2$.",
                    hints=["Let $x \\to 0$ in $x^2$."])
    chunks = judged(CourseSpec(slug="limits", title="Limits", concepts=[
        ConceptSpec(slug="limits", title="Limits", lesson="Limits.", items=[limit, zero])]))
    assert [c.reveals for c in hints_of(chunks, "lim-8")] == [(), ("lim-8",)]
    assert [c.reveals for c in hints_of(chunks, "lim-0")] == [()]  # x approaches 0: not the answer
