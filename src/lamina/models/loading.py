"""``lamina.load``: a model name or path -> :class:`Model` (HF model + tokenizer + adapter)."""

from __future__ import annotations

import dataclasses
import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from ..errors import LaminaError, one_line
from . import bos
from .adapters import Adapter
from .derive import adapter_for_model, text_config
from .embedded import EMBEDDED, converted_dir
from .scope import refusal
from .selfcheck import self_check
from .sites import SITES, n_entries
from .tap import tap

DTYPES = {
    "float32": torch.float32, "fp32": torch.float32,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
}


@dataclass
class Model:
    """A loaded causal LM with everything lamina needs to record it.

    Attributes:
        hf: the unmodified ``transformers`` model, in eval mode.
        tokenizer: its tokenizer.
        adapter: the family adapter that maps canonical sites onto ``hf``'s modules.
        name: what the user asked for (embedded name, hub id or path).
        prepend_bos: whether recordings put the BOS token before every sequence.
        source: where the weights came from (kind, path, and a hash when known).
        bos_token: the token prepended when ``prepend_bos`` (None: the tokenizer's BOS, else EOS).
        widths: each available site's feature width, as measured by the load-time self-check.
        n_heads: the attention's query heads (the head axis of ``attn.heads`` and ``attn.pattern``), as the
            self-check measured them; None where neither site is verified.
    """

    hf: torch.nn.Module
    tokenizer: object
    adapter: Adapter
    name: str
    prepend_bos: bool
    source: dict = field(default_factory=dict)
    bos_token: str | None = None
    widths: dict = field(default_factory=dict)
    n_heads: int | None = None

    @property
    def config(self):
        """The Hugging Face model's config (``hf.config``; a multimodal model's whole config, see :attr:`text_config`)."""
        return self.hf.config

    @property
    def text_config(self):
        """The language model's config (a multimodal model's ``text_config``; ``config`` otherwise)."""
        return text_config(self.config)

    @property
    def n_layers(self) -> int:
        """Number of transformer blocks (``hidden`` has ``n_layers + 1`` entries, every other site ``n_layers``)."""
        return int(self.text_config.num_hidden_layers)

    @property
    def d_model(self) -> int:
        """Width of the residual stream (``hidden``, ``attn.out``, ``mlp.out``), as measured at load."""
        if "hidden" in self.widths:
            return int(self.widths["hidden"])
        return int(self.text_config.hidden_size)

    @property
    def d_mlp(self) -> int:
        """Width of ``mlp.pre``/``mlp.post`` (measured at load; the config's MLP width where undefined)."""
        if "mlp.post" in self.widths:
            return int(self.widths["mlp.post"])
        cfg = self.text_config
        width = getattr(cfg, "intermediate_size", None) or getattr(cfg, "n_inner", None)
        return int(width or 4 * self.d_model)

    @property
    def context_length(self) -> int:
        """The longest sequence the model takes, in tokens (BOS included), from its config (2048 if it names none)."""
        cfg = self.text_config
        return int(getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None)
                   or getattr(cfg, "seq_length", 2048))

    @property
    def vocab_size(self) -> int:
        """Rows of the output embedding (the LM head), the ids the model can score."""
        head = self.hf.get_output_embeddings()
        if head is not None and getattr(head, "weight", None) is not None:
            return int(head.weight.shape[0])
        return int(self.text_config.vocab_size)

    @property
    def device(self) -> torch.device:
        """Where inputs go: the input embeddings' device (with a device map, layers may sit elsewhere)."""
        return self.hf.get_input_embeddings().weight.device

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the weights (that of the first parameter)."""
        return next(self.hf.parameters()).dtype

    @property
    def bos_id(self) -> int | None:
        """The token put before every sequence when ``prepend_bos``: ``bos_token``, else BOS, else EOS."""
        tok = self.tokenizer
        if self.bos_token is not None:
            return tok.convert_tokens_to_ids(self.bos_token)
        return tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` with no special tokens (lamina adds BOS itself)."""
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def decode(self, ids) -> str:
        """The text of token ``ids`` (a sequence of ints, e.g. a row of ``Stimuli.ids``), special tokens kept."""
        return self.tokenizer.decode(list(ids))

    def token_texts(self, ids) -> list[str]:
        """Each id decoded on its own (``' Alice'``, ``','``, ...)."""
        return [self.tokenizer.decode([int(i)]) for i in ids]

    def width(self, site: str) -> int:
        """The feature width of ``site`` (its last axis in a recording): ``d_model`` or ``d_mlp``; raises
        :class:`~lamina.LaminaError` for ``attn.pattern``, whose last axis is keys."""
        if site in self.widths:
            return int(self.widths[site])
        if SITES[site].width == "keys":
            raise LaminaError(f"{site} has no width: its axes are (head, query, key) and its key axis is as long "
                              "as a recording's longest sequence.")
        return self.d_mlp if SITES[site].width == "d_mlp" else self.d_model

    def site_shape(self, site: str, n_slots: int, n_keys: int) -> tuple[int, ...]:
        """The axes after ``(layer, sequence)`` of ``site`` in a recording that keeps ``n_slots`` positions per
        sequence and whose longest sequence is ``n_keys`` model positions (BOS included): ``(slot, width)`` for
        most sites, ``(slot, head, d_model)`` for ``attn.heads``, ``(head, slot, key)`` for ``attn.pattern``."""
        sizes = {"slot": n_slots, "head": self.n_heads, "key": n_keys}
        return tuple(sizes[axis] if axis in sizes else self.width(site) for axis in SITES[site].axes)

    def sites(self) -> pd.DataFrame:
        """One row per site: name, number of layer entries, feature width, hooked module at layer 0
        (and, for a site this family does not define, why)."""
        rows = []
        for name, site in SITES.items():
            why = self.adapter.why_unavailable(name)
            if why is None:
                site_tap = tap(self.hf, self.adapter, name, 0, self.n_layers)
                module, which, hook = site_tap.module, site_tap.which, site_tap.hook
                extra = "" if hook is None else "".join(
                    [f" x {hook.scale}" if hook.scale else "", f" (half {hook.half})" if hook.half is not None else ""])
                where = f"{'probabilities' if which == 'pattern' else which} of {_module_name(self.hf, module)}{extra}"
            rows.append({
                "site": name,
                "entries": n_entries(name, self.n_layers),
                "width": _width_text(self, name) if why is None else "-",
                "hook (layer 0)": where if why is None else "not recorded (see description)",
                "description": site.description if why is None else why,
            })
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        return (f"Model({self.name!r}, family={self.adapter.family}, layers={self.n_layers}, "
                f"d_model={self.d_model}, d_mlp={self.d_mlp}, device={self.device}, dtype={self.dtype}, "
                f"prepend_bos={self.prepend_bos}, bos={self.tokenizer.convert_ids_to_tokens(self.bos_id) if self.prepend_bos else None!r})")


def _width_text(model: Model, site: str) -> str | int:
    """The ``width`` column of :meth:`Model.sites`: heads x d_model, heads x keys for the attention sites."""
    if site == "attn.heads":
        return f"{model.n_heads} x {model.width(site)}"
    if site == "attn.pattern":
        return f"{model.n_heads} x keys"
    return model.width(site)


def _module_name(root: torch.nn.Module, module: torch.nn.Module) -> str:
    for name, candidate in root.named_modules():
        if candidate is module:
            return name
    return type(module).__name__


def _resolve_dtype(dtype) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        if dtype not in DTYPES.values():
            raise LaminaError(f"dtype {dtype} is not a floating-point model dtype; use one of {', '.join(DTYPES)}.")
        return dtype
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise LaminaError(f"unknown dtype {one_line(repr(dtype))}; use one of {', '.join(DTYPES)}.")
    return DTYPES[dtype]


DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu")


def parse_device(device) -> torch.device:
    """``device`` (``"cpu"``, ``"cuda:1"``, a ``torch.device``) as a torch.device, or a LaminaError.

    Only the syntax and the device type are checked here (no GPU is needed to name one); see
    :func:`_resolve_device` for availability.
    """
    if isinstance(device, torch.device):
        parsed = device
    elif isinstance(device, str) and device.strip():
        try:
            parsed = torch.device(device.strip())
        except (RuntimeError, ValueError, TypeError):
            raise LaminaError(f"unknown device {one_line(repr(device))}; use cpu, cuda, cuda:1, mps or xpu.") from None
    else:
        raise LaminaError(f"device must be a name such as 'cpu', 'cuda' or 'cuda:1', not {one_line(repr(device))}.")
    if parsed.type not in DEVICE_TYPES:
        raise LaminaError(f"device {str(parsed)!r} cannot run a model here; use cpu, cuda, cuda:1, mps or xpu.")
    return parsed


def _resolve_device(device) -> torch.device:
    device = torch.device("cpu") if device is None else parse_device(device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise LaminaError("device 'cuda' was asked for, but torch sees no CUDA GPU here; use device='cpu'.")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise LaminaError(f"device {str(device)!r} does not exist: torch sees {torch.cuda.device_count()} "
                              f"CUDA GPU(s), cuda:0..cuda:{torch.cuda.device_count() - 1}.")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise LaminaError("device 'mps' was asked for, but it is not available here; use device='cpu'.")
    if device.type == "xpu" and not (hasattr(torch, "xpu") and torch.xpu.is_available()):
        raise LaminaError("device 'xpu' was asked for, but it is not available here; use device='cpu'.")
    if device.type == "cpu" and device.index not in (None, 0):
        raise LaminaError(f"device {str(device)!r} does not exist; use device='cpu'.")
    return device


MODEL_FILES = ("config.json",)


def _locate(name_or_path: str) -> tuple[str, dict, dict]:
    """(what to pass to from_pretrained, its extra kwargs, a source description)."""
    if name_or_path in EMBEDDED:
        path = converted_dir(name_or_path)
        meta = json.loads((path / "lamina.json").read_text())
        return str(path), {}, {"kind": "embedded", "path": str(path), "sha256": meta["source_sha256"],
                               "hub_id": meta["hub_id"]}
    path = Path(name_or_path).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return str(path.parent), {"gguf_file": path.name}, {"kind": "gguf", "path": str(path)}
    if path.is_file():
        raise LaminaError(f"{name_or_path!r} is a file, not a model: give a .gguf file or the directory holding "
                          "config.json and the weights.")
    if path.is_dir():
        if not (path / "config.json").is_file():
            ggufs = sorted(p.name for p in path.glob("*.gguf"))
            hint = f" (it holds {ggufs[0]!r}: give that file's path)" if ggufs else ""
            raise LaminaError(f"the model directory {name_or_path!r} has no config.json{hint}; give a directory "
                              "saved with save_pretrained, or a .gguf file.")
        return str(path), {"local_files_only": True}, {"kind": "local", "path": str(path.resolve())}
    if name_or_path.startswith((".", "/", "~")) or path.suffix in {".gguf", ".safetensors", ".bin"} \
            or name_or_path.count("/") > 1 or "\\" in name_or_path:
        raise LaminaError(f"no model directory or file at {name_or_path!r}.")
    return name_or_path, {}, {"kind": "hub", "hub_id": name_or_path}


@contextmanager
def _quiet_weight_loading(quiet: bool):
    """Hide transformers' per-tensor bar for local loads (a second); keep it for hub downloads."""
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    if quiet:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if quiet and was_on:
            hf_logging.enable_progress_bar()


def load(name_or_path: str, *, device=None, dtype=None, prepend_bos: bool | None = None,
         bos_token: str | None = None, trust_remote_code: bool = False, revision: str | None = None,
         device_map=None, max_memory: dict | None = None, offload_folder: str | None = None) -> Model:
    """Load a causal LM for recording.

    Args:
        name_or_path: ``"smollm2-135m"`` (the embedded default), a Hugging Face hub id
            (e.g. ``"gpt2"``; offline, the local HF cache is used), a local model
            directory, or a ``.gguf`` file.
        device: ``"cpu"`` (default), ``"cuda"``, ``"cuda:1"``, ...
        dtype: ``"float32"`` (default), ``"bfloat16"`` or ``"float16"``.
        prepend_bos: put the BOS token before every recorded sequence. ``None`` uses the
            family's default (Llama family, Gemma: yes; GPT-2, GPT-NeoX: no; other families: whether
            their tokenizer adds a BOS itself). See docs/sites.md and :mod:`lamina.models.bos`.
        bos_token: which token to prepend (default: the tokenizer's BOS unless it is a chat-turn
            marker such as SmolLM2's ``<|im_start|>``, then ``<|endoftext|>``; else EOS).
        trust_remote_code: run code shipped with a hub checkpoint. Off unless you say so.
        revision: a hub branch, tag or commit.
        device_map: spread a model that fits no single device over several, through accelerate:
            ``"auto"``, or a dict module name -> ``0``/``"cuda:1"``/``"cpu"``/``"disk"``.
        max_memory: with ``device_map="auto"``, the budget per device, e.g. ``{0: "20GiB", "cpu": "60GiB"}``.
        offload_folder: where weights offloaded to ``"disk"`` are kept.

    Returns:
        A :class:`Model` in eval mode.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise LaminaError(f"a model name or path is needed, e.g. 'smollm2-135m' or 'gpt2', not "
                          f"{one_line(repr(name_or_path))}.")
    try:
        name_or_path.encode("utf-8")
    except UnicodeEncodeError:
        raise LaminaError(f"model {one_line(repr(name_or_path))} is not valid UTF-8; give an embedded name, a hub "
                          "id or a path.") from None
    if "\x00" in name_or_path:
        raise LaminaError(f"model {one_line(repr(name_or_path))} holds a NUL character.")
    if device_map is not None and device is not None:
        raise LaminaError("give either device or device_map, not both.")
    if revision is not None and (not isinstance(revision, str) or not revision.strip()):
        raise LaminaError(f"revision must be a branch, tag or commit name, not {one_line(repr(revision))}.")
    for flag, value in (("trust_remote_code", trust_remote_code),) + (
            () if prepend_bos is None else (("prepend_bos", prepend_bos),)):
        if not isinstance(value, bool):
            raise LaminaError(f"{flag} must be True or False, not {one_line(repr(value))}.")
    if bos_token is not None and (not isinstance(bos_token, str) or not bos_token):
        raise LaminaError(f"bos_token must be a token string such as '<|endoftext|>', not {one_line(repr(bos_token))}.")
    if device_map is not None and not isinstance(device_map, (str, dict)):
        raise LaminaError(f"device_map must be 'auto' or a dict module name -> device, not {one_line(repr(device_map))}.")
    if isinstance(device_map, dict):
        if not device_map:
            raise LaminaError("device_map is empty; give 'auto' or a dict module name -> device.")
        for key, where in device_map.items():
            named = where in ("cpu", "disk") or (isinstance(where, str) and where.startswith(("cuda", "mps", "xpu")))
            if not isinstance(key, str) or not (named or (isinstance(where, int) and not isinstance(where, bool)
                                                          and where >= 0)):
                raise LaminaError(f"device_map maps module names to a GPU index, 'cuda:N', 'cpu' or 'disk'; "
                                  f"not {key!r}: {where!r}.")
    if max_memory is not None and not isinstance(max_memory, dict):
        raise LaminaError(f"max_memory must be a dict device -> budget such as {{0: '20GiB', 'cpu': '60GiB'}}, "
                          f"not {one_line(repr(max_memory))}.")
    if offload_folder is not None:
        from ..errors import check_output_dir

        check_output_dir(offload_folder, "offload_folder")
    torch_dtype, torch_device = _resolve_dtype(dtype), _resolve_device(device)
    target, kwargs, source = _locate(name_or_path)
    common = dict(kwargs, trust_remote_code=trust_remote_code)
    placement = {}
    if device_map is not None:
        placement = {"device_map": device_map, "max_memory": max_memory, "offload_folder": offload_folder}
        placement = {k: v for k, v in placement.items() if v is not None}
    if revision:
        common["revision"] = revision
    local = source["kind"] in ("local", "gguf")
    try:
        config = AutoConfig.from_pretrained(target, **common)
    except Exception as err:  # noqa: BLE001 - transformers, gguf and safetensors raise many types for a bad file
        if local:
            raise LaminaError(f"could not read the model at {name_or_path!r}: {_damaged(err)}") from None
        raise LaminaError(
            f"could not load model {name_or_path!r}: it is not an embedded model "
            f"({', '.join(EMBEDDED)}), not a local directory, and the Hugging Face hub or its local "
            f"cache did not provide it ({_first_line(err)})."
        ) from None
    reason = refusal(config.model_type)
    if reason is not None:  # before any weights are read
        raise LaminaError(reason)
    try:
        with _quiet_weight_loading(source["kind"] != "hub"):
            hf = AutoModelForCausalLM.from_pretrained(target, dtype=torch_dtype, **common, **placement)
        tokenizer = AutoTokenizer.from_pretrained(target, **common)
    except OSError as err:
        raise LaminaError(f"could not load the weights or tokenizer of {name_or_path!r}: {_first_line(err)}") from None
    except ValueError as err:  # e.g. a device map that names no module of this model
        if device_map is not None:
            raise LaminaError(f"could not place {name_or_path!r} with device_map={device_map!r}: "
                              f"{_first_line(err)}") from None
        if not local:
            raise
        raise LaminaError(f"could not read the model at {name_or_path!r}: {_damaged(err)}") from None
    except Exception as err:  # noqa: BLE001 - a damaged local file reaches parsers far below
        if not local:
            raise
        raise LaminaError(f"could not read the model at {name_or_path!r}: {_damaged(err)}") from None
    if device_map is None:
        hf.to(torch_device)
    elif isinstance(device_map, dict):
        # transformers ignores keys that name no module; a typo would silently place nothing.
        names = dict(hf.named_modules())
        unknown = [key for key in device_map if key and key not in names]
        if unknown:
            raise LaminaError(f"could not place {name_or_path!r}: device_map names no module {unknown[:3]} "
                              f"(modules look like {next(iter(n for n in names if n.count('.') == 2), '')!r}).")
    hf.eval()
    # Enough to load the same model again elsewhere (a Ray worker, a later session); JSON-safe.
    source["load"] = {"name_or_path": source.get("path") if source["kind"] == "local" else name_or_path,
                      "dtype": str(torch_dtype).replace("torch.", ""), "prepend_bos": prepend_bos,
                      "bos_token": bos_token, "trust_remote_code": trust_remote_code, "revision": revision,
                      "device_map": device_map if isinstance(device_map, (str, type(None))) else dict(device_map),
                      "max_memory": max_memory, "offload_folder": offload_folder}
    return wrap(hf, tokenizer, name=name_or_path, prepend_bos=prepend_bos, bos_token=bos_token, source=source)


def _first_line(err) -> str:
    lines = str(err).strip().splitlines()
    return one_line(lines[0] if lines else type(err).__name__)


def _damaged(err) -> str:
    """Why a local model could not be read, in one line: a truncated or damaged file is the usual cause."""
    kind = type(err).__name__ if type(err).__module__ == "builtins" else f"{type(err).__module__}.{type(err).__name__}"
    return (f"the file is damaged, truncated or not a model ({kind}: {_first_line(err)}); "
            "save or download it again.")


def wrap(hf, tokenizer, *, name: str | None = None, prepend_bos: bool | None = None,
         bos_token: str | None = None, source: dict | None = None) -> Model:
    """Make a :class:`Model` from an HF model and tokenizer you already hold (e.g. a random one).

    The architecture's adapter is the hand-written one of its family, else derived from its
    module tree; either way the self-check verifies every site on these weights first, and an
    architecture lamina cannot verify is refused with one line saying why (docs/sites.md).
    BOS: see :mod:`lamina.models.bos` (``prepend_bos`` / ``bos_token`` override it).
    """
    hf.eval()
    adapter = adapter_for_model(hf)
    n_layers = int(text_config(hf.config).num_hidden_layers)
    checked = self_check(hf, adapter, n_layers)
    if checked.refused:  # an attention site whose identity fails on this model: that site alone is refused
        adapter = dataclasses.replace(adapter, unavailable=adapter.unavailable + tuple(checked.refused.items()))
    prepend = bos.default_prepend(adapter.family, adapter.prepend_bos, tokenizer)
    model = Model(hf=hf, tokenizer=tokenizer, adapter=adapter,
                  name=name or getattr(hf.config, "name_or_path", "") or type(hf).__name__,
                  prepend_bos=prepend if prepend_bos is None else bool(prepend_bos),
                  source=source or {"kind": "object"},
                  bos_token=bos_token if bos_token is not None else bos.default_token(tokenizer),
                  widths=checked.widths, n_heads=checked.n_heads)
    if bos_token is not None and tokenizer.convert_tokens_to_ids(bos_token) in (None, tokenizer.unk_token_id) \
            and bos_token != tokenizer.unk_token:
        raise LaminaError(f"bos_token {bos_token!r} is not a token of {model.name!r}'s tokenizer.")
    if model.prepend_bos and model.bos_id is None:
        raise LaminaError(f"prepend_bos is on but the tokenizer of {model.name!r} has no BOS or EOS token.")
    return model
