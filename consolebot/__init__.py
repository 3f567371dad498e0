"""consolebot: rescue Linux servers through their out-of-band console.

This module holds only the version so that ``consolebot --help`` stays fast.
"""

__version__ = "0.1.0"
