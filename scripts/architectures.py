"""Regenerate the architecture survey: src/lamina/models/architectures.json and docs/architectures.md.

Run after changing an adapter, the resolver or the self-check, or after upgrading transformers:

    .venv/bin/python scripts/architectures.py

One run of :func:`lamina.models.architectures.survey` over every model type of transformers'
causal-LM mapping (tiny random models, about a minute on 2 cores); nobody edits either file by hand.
tests/test_architectures.py fails when a row no longer matches.
"""

import sys
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from lamina.models import architectures as arch  # noqa: E402
from lamina.models.tiny import EMBEDDED_CONFIGS  # noqa: E402
from lamina.recording.verify import check_recording  # noqa: E402


def main() -> int:
    warnings.filterwarnings("ignore")
    from transformers.utils import logging

    logging.set_verbosity_error()
    torch.set_num_threads(1)  # tiny models: one thread is fastest
    statuses = arch.survey(record_check=check_recording)
    embedded = [arch.survey_embedded(name, record_check=check_recording) for name in EMBEDDED_CONFIGS]
    arch.save(statuses, embedded)
    version, statuses = arch.load_table()
    _, embedded = arch.load_table(part="embedded")
    (ROOT / "docs" / "architectures.md").write_text(arch.markdown(version, statuses, embedded))
    print(arch.describe(statuses).splitlines()[-1])
    return 0 if not arch.counts(statuses)["failing"] else 1


if __name__ == "__main__":
    sys.exit(main())
