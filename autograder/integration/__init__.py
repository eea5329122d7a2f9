"""The nbgrader integration: preprocessors (:mod:`.preprocessors`: the trusted execute step,
feedback cells) and hidden tests (:mod:`.hidden_tests`). nbgrader reads the course's
configuration from ``autograder/nbgrader_config.py``.
"""
