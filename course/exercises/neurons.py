"""Exercises of the neurons assignment (being written)."""
