"""The main job (``make demo``): an MLP trained on the shipped digits."""

import subprocess
import sys

from course.demo import train_digits


def test_the_demo_network_learns_the_digits():
    model, test_acc = train_digits(epochs=5, seed=1, verbose=False)
    assert test_acc > 0.9  # chance is 0.1: a broken backward or optimiser stays far below
    assert [p.data.shape for p in model.parameters()] == [(64, 64), (64,), (64, 10), (10,)]


def test_the_demo_runs_as_a_module_and_reports_accuracy():
    result = subprocess.run([sys.executable, "-m", "course.demo"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "test accuracy:" in result.stdout and "CC BY 4.0" in result.stdout
