"""The optional C hot path of ``consolebot capture`` (consolebot/_fastpath.c); everything else is in setup.cfg.

setup.cfg cannot name a C extension. ``optional=True``: without a C compiler or Python's headers the
install still succeeds and consolebot runs the same code in Python (slower at hundreds of consoles).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("consolebot._fastpath", ["consolebot/_fastpath.c"], optional=True)])
