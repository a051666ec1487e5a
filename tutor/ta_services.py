"""The TA-bot in the product (issue #7): index a course's texts, answer students' questions, escalate to faculty.

Work in progress by the TA-wiring helper; `inference/ta.py` and `inference/retrieval.py` hold the Django-free core.
"""

from __future__ import annotations
