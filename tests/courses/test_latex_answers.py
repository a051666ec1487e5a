"""LaTeX answers as OATutor authors wrote them, read by the answer checker as the author meant them."""

from __future__ import annotations

import pytest

from courses.checking import parse_expression, symbolically_equal
from courses.importers.latex import LatexError, expression_variables, latex_to_expression, split_equation


@pytest.mark.parametrize(("latex", "meant"), [
    (r"$$\frac{1}{2}$$", "1/2"),
    (r"$$\frac{1}{2x}$$", "1/(2*x)"),
    (r"$$\frac{-20}{32}$$", "-5/8"),
    (r"$$x^2$$", "x**2"),
    (r"$$x^{14}$$", "x**14"),
    (r"$$\sqrt{3}$$", "sqrt(3)"),
    (r"$$6\sqrt[4]{3}$$", "6*3**(1/4)"),
    (r"$$2\left(x+2\right)^2-18$$", "2*(x+2)**2-18"),
    (r"$$\frac{\left(x-1\right) \left(2x-1\right)}{3\left(x+6\right)}$$", "(x-1)*(2*x-1)/(3*(x+6))"),
    (r"$$-10206x^4$$ $$y^5$$", "-10206*x**4*y**5"),
    (r"$$3x^2-11x+24$$ - $$\frac{45}{x+2}$$", "3*x**2-11*x+24-45/(x+2)"),
    (r"$$\log_{3}\left(20\right)$$", "log(20)/log(3)"),
    (r"$$2\ln\left(x\right)+3\ln\left(y\right)$$", "2*log(x)+3*log(y)"),
    (r"$$1.25\times{10}^2$$", "125"),
    (r"$$-|a-1|+|a+1|$$", "-Abs(a-1)+Abs(a+1)"),
    (r"$$\frac{1}{{\theta}^7}$$", "theta**(-7)"),
    (r"$$1350e^{0.03466t}$$", "1350*exp(0.03466*t)"),
    (r"$$180\pi$$", "180*pi"),
])
def test_latex_answer_means_what_the_author_wrote(latex: str, meant: str) -> None:
    expression = latex_to_expression(latex)
    variables = expression_variables(expression)
    assert symbolically_equal(parse_expression(expression, variables), parse_expression(meant, variables))


def test_answer_that_names_its_unknown_keeps_the_right_side() -> None:
    assert split_equation(latex_to_expression(r"$$f(x)=\left(x-6\right)^2-4$$")) == ("f(x)=", "(x-6)^2-4")
    assert split_equation(latex_to_expression("$$x=3$$")) == ("x=", "3")


@pytest.mark.parametrize(("latex", "category"), [
    (r"$$\begin{bmatrix} 1 & 2 \\ 3 & 4 \end{bmatrix}$$", "matrix"),
    (r"$$x \geq -5$$", "inequality"),
    (r"$$\frac{x^2}{9}-\frac{y^2}{16}=1$$", "equation"),
    (r"$$7{x'}^2+9{y'}^2-4=0$$", "bad-latex"),
    ("log{3}(2)+log{3}(x)", "bad-latex"),
    ("Not a parabola", "words"),
    ("2-i $$\\sqrt{5}$$", "words"),
    (r"$$y=\pm \frac{2}{9} x$$", "plus-minus"),
    (r"$$\frac{1}{2$$", "bad-latex"),
])
def test_what_the_checker_cannot_read_is_refused_with_a_category(latex: str, category: str) -> None:
    with pytest.raises(LatexError) as caught:
        split_equation(latex_to_expression(latex))
    assert caught.value.category == category
