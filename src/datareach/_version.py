"""The version of datareach (also ``datareach.__version__``).

A module of its own, in the base stage, so that any stage can name the version without importing
the package's public API (``datareach/__init__.py``).
"""

__version__ = "0.1.0"
