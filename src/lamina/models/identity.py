"""What a model's weights are, known before loading them: the key of run reuse across comparisons.

:func:`lamina.models.fingerprint.weights_sha256` hashes the weights of a loaded model (its manifest
field ``weights_sha256``). For a model given by name the same hash can be known from its files
alone: the embedded GGUF's recorded sha256, a local directory's weight files, the blobs of the
Hugging Face cache. :func:`weights_identity` gives that hash without loading anything, so a
comparison can tell whether a run of this model already exists before paying for the load.
"""

from __future__ import annotations

from types import SimpleNamespace

from .control import control_identity
from .fingerprint import weights_sha256
from .loading import Model, _locate


def weights_identity(model) -> str | None:
    """The weights' sha256 of a :class:`Model` or a name/path, as the run manifest records it.

    A name is located as :func:`lamina.load` would (an embedded model's conversion is prepared if it
    is not yet), but no weights are read into memory. None where no hash is known (a hub model that
    is not in the local cache, or a large model built in memory): such a run is never reused.

    A control (``source["kind"] == "random-init"``) is identified by its config, init seed and torch
    version (:func:`lamina.models.control.control_identity`).
    """
    if isinstance(model, Model):
        if model.source.get("kind") == "random-init":
            return model.source["identity"]
        return weights_sha256(model)
    _target, _kwargs, source = _locate(model)
    # weights_sha256 reads only the source for every kind _locate returns (never the parameters).
    return weights_sha256(SimpleNamespace(source=source, hf=None))


def random_control_identity(model, seed: int, *, trust_remote_code: bool = False, revision=None) -> str:
    """The identity :func:`lamina.models.control.random_control` will give its control, without building it."""
    from .control import load_config

    config = model.config if isinstance(model, Model) else load_config(
        model, trust_remote_code=trust_remote_code, revision=revision)
    return control_identity(config, seed)
