"""lamina's version: a leaf module, so any stage can read it without importing the package face."""

__version__ = "0.1.0"
