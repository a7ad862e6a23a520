"""Kept for imports of ``lamina.models.cache``: the cache directory lives in :mod:`lamina.cache`."""

from ..cache import cache_dir

__all__ = ["cache_dir"]
