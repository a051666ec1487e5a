"""Teach-back: a student who has mastered a concept explains it to a curious beginner, and faculty see what
beginners stumble on.

Django side only: the rows (`models.py`), the session steps (`services.py`), what pages show (`selectors.py`) and
the faculty panel (`views.py`). Scoring an explanation lives in `inference/teachback.py`; the evidence it gives the
learner model in `learner_model/policy.py` (`TutorPolicy.record_explanation`); neither knows Django.
"""
