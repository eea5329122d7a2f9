"""Exercises of the losses assignment (being written)."""
