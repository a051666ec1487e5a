"""Learner model: what each student knows, how to predict their next answer, what to teach next.

No Django import anywhere in this package: plain dataclasses, numpy arrays and torch tensors in and out.
"""
