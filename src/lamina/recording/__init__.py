"""Stage 4: the recording engine (batched hooks) and the on-disk store."""

from .engine import record
from .recording import Recording

__all__ = ["Recording", "record"]
