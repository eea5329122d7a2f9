"""The bundled sample class that ``python -m autograder demo`` grades.

``<assignment>/<student_id>/<notebook>.ipynb``, generated from the student release by
:mod:`autograder.sample_class.make_sample_class` (run it after a notebook changes).
"""
