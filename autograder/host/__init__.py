"""The host side of grading, outside any sandbox.

Collect (:mod:`.collect`, :mod:`.student_files`, :mod:`.lms`, :mod:`.roster`,
:mod:`.submission`), plan and run (:mod:`.pipeline`, :mod:`.settings`, :mod:`.course_setup`,
:mod:`.staging` and :mod:`.task`, :mod:`.state`, :mod:`.engines`, :mod:`.pool` on this machine
or :mod:`.cluster` on Dask), the gradebook (:mod:`.gradebook`, :mod:`.database`,
:mod:`.hand_grades`), results (:mod:`.flags`, :mod:`.outputs`, :mod:`.private_files`,
:mod:`.export`, :mod:`.mistakes`, :mod:`.similarity`, :mod:`.sanitize`) and the class report
(:mod:`.report` with ``templates/``).
"""
