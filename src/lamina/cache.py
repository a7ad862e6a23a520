"""Where lamina keeps converted models and downloaded texts (``LAMINA_CACHE``).

A leaf module: models (converted weights) and data (downloaded texts) both read it.
"""

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """``$LAMINA_CACHE`` (default ``~/.cache/lamina``) joined with ``parts``; created on demand."""
    root = Path(os.environ.get("LAMINA_CACHE") or Path.home() / ".cache" / "lamina")
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
