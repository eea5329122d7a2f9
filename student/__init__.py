"""Build the sealed student bundle: the release notebooks and a compiled edition of ``course``.

See :mod:`student.build` (``python -m student.build``, or ``make student``).
"""
