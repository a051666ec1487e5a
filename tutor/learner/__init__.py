"""The learner model in use: refitting it on the tutor's own attempt log, and which fitted model sessions predict by.

Django side only; the models themselves live in `learner_model/`, which knows nothing of Django.
"""
