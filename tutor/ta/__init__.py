"""The TA-bot: answers course questions from the course's own materials, with citations, and escalates to faculty.

Django side only (index rows, questions, pages, the socket); retrieval and answer composition live in
`inference/retrieval.py` and `inference/ta.py`, which know nothing of Django.
"""
