"""Stage 4: the recording engine (batched hooks) and the on-disk store.

``record`` and ``Recording`` are imported on first use, so the store (run directories' checksums,
recordings on disk) can be imported without torch.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:  # what readers of the source (griffe for the docs, type checkers, IDEs) see
    from .engine import record
    from .recording import Recording

__all__ = ["Recording", "record"]

__getattr__, __dir__ = lazy_exports(__name__, {"record": (".engine", "record"),
                                               "Recording": (".recording", "Recording")})
