"""Exercises of the mlp assignment (being written)."""
