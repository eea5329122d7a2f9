"""The trusted engine: every verdict is decided here, in the grading process, never in a
student's kernel.

:mod:`.engine` grades a notebook (:func:`~.engine.grade`, the orchestration): :mod:`.plan`
draws the checks' cases and groups them into checking runs; :mod:`.runs` (the notebook run) and
:mod:`.checking` (the checking runs) run the notebook in the sandbox, talking to the checking
runs over :mod:`.channel` while :mod:`.watch` holds each case to its CPU budget (telling the
run's processes apart: :mod:`.processes`); :mod:`.render` writes each verdict into the graded
notebook, and :mod:`.record` holds what the run decided. :mod:`.cells` reads test cells,
:mod:`.slicing` picks the cells a check depends on, and :mod:`.withhold` (with
:mod:`.allowlist`) builds the library copy without the answers.
"""
