"""Exercises of the optim assignment (being written)."""
