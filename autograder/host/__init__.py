"""The host side of grading, outside any sandbox.

Collect (:mod:`.lms`, :mod:`.roster`, :mod:`.submission`), plan and run (:mod:`.pipeline`,
:mod:`.engines`, :mod:`.pool` on this machine or :mod:`.cluster` on Dask), the gradebook
(:mod:`.database`, :mod:`.hand_grades`), results (:mod:`.flags`, :mod:`.export`,
:mod:`.mistakes`, :mod:`.similarity`, :mod:`.sanitize`) and the class report (:mod:`.report`
with ``templates/``).
"""
