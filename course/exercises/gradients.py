"""Exercises of the gradients assignment (being written)."""
