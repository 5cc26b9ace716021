"""Hypothesis profiles for the property tests.

The default profile draws the same examples on every run, so that a test run
is reproducible and a red result can be repeated. Set
``HYPOTHESIS_PROFILE=explore`` to draw fresh random examples instead; a
failure then prints the seed that reproduces it.
"""

import os

from hypothesis import settings

settings.register_profile("repeatable", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))
