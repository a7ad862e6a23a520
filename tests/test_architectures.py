"""The proof of the site vocabulary: every model type of transformers' causal-LM auto mapping is
either verified (tiny random model: adapter, load-time self-check, every site recorded and checked
against the model's own outputs) or refused with one line and the reason, and the shipped table
(src/lamina/models/architectures.json, docs/architectures.md) says exactly that."""

import pytest

from lamina.models import architectures as arch
from lamina.models.tiny import EMBEDDED_CONFIGS
from lamina.models.sites import SITES
from lamina.recording.verify import check_recording

VERSION, SHIPPED = arch.load_table()
SHIPPED = {s.model_type: s for s in SHIPPED}
_, EMBEDDED = arch.load_table(part="embedded")
EMBEDDED = {s.model_type: s for s in EMBEDDED}


pytestmark = pytest.mark.usefixtures("one_thread", "quiet_transformers")  # fixtures in conftest.py


def _one_line_reason(status):
    assert status.reason and "\n" not in status.reason and len(status.reason) < 500, status.reason


@pytest.mark.parametrize("model_type", list(arch.causal_lm_types()))
def test_every_causal_lm_type_is_verified_or_refused_with_a_reason(model_type):
    status = arch.survey_one(model_type, record_check=check_recording)
    assert status.status != "failing", status.reason
    if status.status == "verified":
        assert {"hidden", "attn.out", "attn.raw", "mlp.in", "mlp.out", "mlp.raw"} <= set(status.sites)
        # a mixture of experts has no single expansion: mlp.pre/post are refused there (with a reason)
        assert status.mlp_kind != "moe" or "mlp.pre" not in status.sites
    else:
        _one_line_reason(status)
    shipped = SHIPPED.get(model_type)
    assert shipped is not None, f"{model_type} is new in transformers: run `python scripts/architectures.py`"
    assert (status.status, status.sites, status.adapter) == (shipped.status, shipped.sites, shipped.adapter), \
        "docs/architectures.md no longer matches: run `python scripts/architectures.py`"


@pytest.mark.parametrize("name", list(EMBEDDED_CONFIGS))
def test_embedded_models_structure_at_small_width(name):
    """Tiny random twins of SmolLM2-135M and Gemma-3 270M (their real configs, small sizes)."""
    status = arch.survey_embedded(name, record_check=check_recording)
    assert status.status == "verified" and status.sites == list(SITES), status.reason
    assert EMBEDDED[name].status == "verified"


def test_generated_docs_match_the_shipped_table():
    import transformers
    from pathlib import Path

    assert VERSION == transformers.__version__, "surveyed with another transformers: regenerate the table"
    docs = Path(__file__).resolve().parents[1] / "docs" / "architectures.md"
    assert docs.read_text() == arch.markdown(VERSION, list(SHIPPED.values()), list(EMBEDDED.values()))


def test_at_least_as_many_verified_as_transformerlens_text_decoders():
    counts = arch.counts(SHIPPED.values())
    assert counts["verified"] >= arch.TRANSFORMERLENS_TEXT_DECODERS and counts["failing"] == 0
    assert set(SHIPPED) == set(arch.causal_lm_types())


def test_cli_lists_statuses_and_refusals(capsys):
    from lamina.cli import main

    assert main(["architectures", "gemma3_text", "mamba", "bert"]) == 0
    out = capsys.readouterr().out
    assert "gemma3_text  verified" in out and "mlp.pre" in out
    assert "mamba        refused           layer 0 of 'mamba'" in out and "not decoder-only" in out
    assert main(["architectures", "no_such_type"]) == 2
    assert "unknown model type" in capsys.readouterr().err
