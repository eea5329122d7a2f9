"""Hostile submissions for tests/test_hostile.py (see catalogue.py)."""
