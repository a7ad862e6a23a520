"""Untrained controls: the same architecture with freshly initialised weights.

A profile measured on a trained model mixes what training put there with what the architecture
does by itself: the embedding scale, norms, residual accumulation, positional machinery. The
control separates them: the model's own config built with ``AutoModelForCausalLM.from_config``
(the architecture's own ``_init_weights``) under a recorded torch seed, with the trained model's
tokenizer and BOS policy, so the same stimuli reach it token for token.

Nothing downstream needs to know: a control is an ordinary :class:`~lamina.models.Model`
(``source["kind"] == "random-init"``), verified by the load-time self-check like any other.
"""

from __future__ import annotations

import copy
import hashlib
import json

import torch

from ..errors import LaminaError
from .loading import Model, _locate, _resolve_device, _resolve_dtype, wrap
from .scope import refusal

CONTROL_KINDS = ("random",)


def config_sha256(config) -> str:
    """sha256 of a transformers config's full JSON (sorted keys): the architecture a control is built from."""
    text = json.dumps(config.to_dict(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def control_identity(config, seed: int) -> str:
    """What determines a control's weights: the config, the init seed and the torch version (its RNG and
    initialisers), as one sha256 (the run-reuse key of a control, in place of a weights hash)."""
    text = json.dumps({"config_sha256": config_sha256(config), "init_seed": int(seed), "torch": torch.__version__})
    return hashlib.sha256(text.encode()).hexdigest()


def control_name(name: str, seed: int) -> str:
    """The control's model name, e.g. ``"smollm2-135m (untrained, seed 0)"``."""
    return f"{name} (untrained, seed {seed})"


def load_config(name_or_path: str, *, trust_remote_code: bool = False, revision: str | None = None):
    """The transformers config of a model name or path, without reading any weights."""
    from transformers import AutoConfig

    target, kwargs, _source = _locate(name_or_path)
    common = dict(kwargs, trust_remote_code=trust_remote_code, **({"revision": revision} if revision else {}))
    try:
        config = AutoConfig.from_pretrained(target, **common)
    except (OSError, ValueError) as err:
        raise LaminaError(f"could not read the config of {name_or_path!r} to build its untrained control "
                          f"({str(err).splitlines()[0]}).") from None
    reason = refusal(config.model_type)
    if reason is not None:
        raise LaminaError(reason)
    return config


def random_control(model, *, seed: int = 0, device=None, dtype=None, trust_remote_code: bool = False,
                   revision: str | None = None, prepend_bos: bool | None = None,
                   bos_token: str | None = None) -> Model:
    """The untrained control of ``model``: its architecture, freshly initialised under ``seed``.

    What is random: every weight. The model's config is built anew with
    ``AutoModelForCausalLM.from_config`` (on the CPU, in float32, under ``torch.manual_seed(seed)``), so
    each parameter and buffer the architecture initialises (token and position embeddings, attention and
    MLP projections, the LM head, norm scales and biases) takes the value of the architecture's own
    ``_init_weights``: usually normal draws for the matrices, ones and zeros for norms, zeros for biases;
    tied embeddings stay tied. What is kept: the config (number of layers, widths, heads, vocabulary,
    positional scheme, sliding windows), the tokenizer and the BOS policy, so the same stimuli reach the
    control token for token; and the trained model's device and dtype unless given. The same seed gives
    the same weights on every device; the global RNG state is left as it was.

    Example::

        model = lamina.load("smollm2-135m")
        control = lamina.random_control(model, seed=0)          # "smollm2-135m (untrained, seed 0)"
        stimuli = lamina.stimuli.window(lamina.data.book("alice"), model, 128)
        trained = lamina.record(model, stimuli, sites=["hidden"])
        untrained = lamina.record(control, stimuli, sites=["hidden"])   # same tokens, same shapes

    Args:
        model: a :class:`Model` (its config, tokenizer, BOS policy, device and dtype are used) or a
            name/path as :func:`lamina.load` takes (only its config and tokenizer are read, never its weights).
        seed: the torch seed of the initialisation (recorded in ``source["init_seed"]``). The global
            RNG state is left as it was.
        device, dtype, trust_remote_code, revision, prepend_bos, bos_token: as :func:`lamina.load`, for a
            name; a :class:`Model` keeps its own unless given.

    Returns:
        A :class:`Model` named ``"<name> (untrained, seed <seed>)"`` with ``source = {"kind": "random-init",
        "of": <name>, "init_seed": seed, "config_sha256": ..., "identity": ...}``.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise LaminaError(f"the control's init seed must be a non-negative integer, not {seed!r}.")
    if isinstance(model, Model):
        config, tokenizer, name = model.config, model.tokenizer, model.name
        prepend_bos = model.prepend_bos if prepend_bos is None else prepend_bos
        bos_token = model.bos_token if bos_token is None else bos_token
        torch_dtype = model.dtype if dtype is None else _resolve_dtype(dtype)
        torch_device = model.device if device is None else _resolve_device(device)
    else:
        name = model
        torch_dtype, torch_device = _resolve_dtype(dtype), _resolve_device(device)
        config = load_config(name, trust_remote_code=trust_remote_code, revision=revision)
        target, kwargs, _source = _locate(name)
        try:
            tokenizer = AutoTokenizer.from_pretrained(target, **kwargs, trust_remote_code=trust_remote_code,
                                                      **({"revision": revision} if revision else {}))
        except (OSError, ValueError) as err:
            raise LaminaError(f"could not load the tokenizer of {name!r} for its untrained control: "
                              f"{str(err).splitlines()[0]}") from None
    # Identity first: from_config may annotate the config it builds from (attention implementation, dtype).
    source = {"kind": "random-init", "of": name, "init_seed": seed, "config_sha256": config_sha256(config),
              "identity": control_identity(config, seed), "torch": torch.__version__,
              "dtype": str(torch_dtype).replace("torch.", "")}
    # Built on the CPU in float32 under the seed, then moved: the same weights on every device.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        # A copy: from_config annotates the config it is given, and a Model's config must stay as it was.
        hf = AutoModelForCausalLM.from_config(copy.deepcopy(config), trust_remote_code=trust_remote_code)
    hf = hf.to(device=torch_device, dtype=torch_dtype).eval()
    return wrap(hf, tokenizer, name=control_name(name, seed), prepend_bos=prepend_bos, bos_token=bos_token,
                source=source)
