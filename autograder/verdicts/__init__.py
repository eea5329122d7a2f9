"""The trusted engine: every verdict is decided here, in the grading process, never in a
student's kernel.

:mod:`.engine` runs a notebook twice in the sandbox and judges the checking run's outputs;
:mod:`.cells` reads test cells, :mod:`.slicing` picks the cells a check depends on, and
:mod:`.withhold` (with :mod:`.allowlist`) builds the library copy without the answers.
"""
