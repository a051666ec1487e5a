"""`{{ text|inline }}`: a short piece of course text (a key idea, a misconception, an authored probe) as the
student's page shows course text: Markdown with `$...$` maths for KaTeX, sanitised (`tutor.display.inline_html`).
Without it a key idea of an imported maths course read "$\\frac{p}{q}$"."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe

from tutor.display import inline_html

register = template.Library()


@register.filter
def inline(text: str) -> SafeString:
    return mark_safe(inline_html(str(text)))  # noqa: S308  (rendered by markdown-it, sanitised by nh3)
