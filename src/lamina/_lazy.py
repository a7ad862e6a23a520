"""Public names of a package imported on first use (PEP 562).

A package whose ``__init__`` imports its modules eagerly makes every import of one of its modules pay
for all of them: importing ``lamina.models.depth`` (plain arithmetic on layer indices, used by the
settings of every experiment) ran ``lamina/models/__init__.py`` and with it torch and transformers.
Packages whose public names need torch declare them here instead, so that loading a run, drawing its
figures and writing its report never import torch (tests/test_no_torch.py).
"""

from __future__ import annotations

import importlib


def lazy_exports(package: str, names: dict[str, tuple[str, str | None]]):
    """``(__getattr__, __dir__)`` for ``package``: ``names`` maps a public name to ``(module, attribute)``,
    the module relative to the package, the attribute None for the module itself.

    Use in the package's ``__init__``::

        __getattr__, __dir__ = lazy_exports(__name__, {"record": (".engine", "record")})
    """
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str):
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attribute = names[name]
        value = importlib.import_module(module, package)
        if attribute is not None:
            value = getattr(value, attribute)
        namespace[name] = value  # later look-ups skip __getattr__
        return value

    def __dir__():
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__
