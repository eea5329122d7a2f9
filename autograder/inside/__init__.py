"""The two scripts that run inside the sandbox, copied into each run's work folder.

:mod:`.worker` is the notebook run (outputs for feedback), :mod:`.checker` the checking run
(the cases, against the withheld library). They import nothing else of ``autograder``: inside
the sandbox the package is not there.
"""
