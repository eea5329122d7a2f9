"""Exercises of the graphs assignment (being written)."""
