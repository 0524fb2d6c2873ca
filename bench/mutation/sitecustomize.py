"""Loaded by the `python -m trainer` processes that tests start while mutation testing runs (bench/mutants.py).

While mutmut records which tests reach which function (MUTANT_UNDER_TEST=stats), a child process cannot record
anything and would fail looking for mutmut's settings in its own working folder, so it runs the plain code.
While a mutant is tried, the child runs that mutant like the test process does.
"""

import os

if os.environ.get("MUTANT_UNDER_TEST") == "stats":
    os.environ["MUTANT_UNDER_TEST"] = ""
