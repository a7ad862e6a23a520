"""Edits: interventions at the sites lamina records, written through the same :class:`Tap` that reads them.

An edit names a site, its layers and (optionally) the kept positions, in the vocabulary of
``lamina.record``::

    edits = [lamina.edits.zero("attn.out", layers=3),
             lamina.edits.patch("hidden", layers=5, source=clean, positions="last")]
    rec = lamina.record(model, corrupted, sites=["hidden"], edits=edits)   # the edited run, with loss
    with lamina.editing(model, [lamina.edits.scale("mlp.out", 2, 0.0)]):  # or any forward pass
        logits = model.hf(input_ids=ids).logits

Kinds: :func:`zero`, :func:`mean` (the site's mean over a reference recording), :func:`resample`
(values of random tokens of other sequences of a source recording), :func:`patch` (sequence i of a
source recording for sequence i of the stimuli: activation patching), :func:`add` (a steering
vector) and :func:`scale` (a factor). An edit gives the site a new value at its real (unpadded)
positions; the hook writes it through :meth:`Tap.write <lamina.models.tap.Tap.write>` (the inverse
of the read transform), so reading the site in the same pass gives the edited value. What an edit of
each site means: docs/sites.md, "Editing a site".
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch

from ..errors import LaminaError
from ..models import tap as _tap
from ..models.sites import check_layers, check_site
from .positions import describe, kept_positions

__all__ = ["Edit", "add", "editing", "mean", "patch", "resample", "scale", "zero"]


class Edit:
    """One intervention: ``kind`` at ``site`` × ``layers`` × ``positions``. Build it with :func:`zero`,
    :func:`mean`, :func:`resample`, :func:`patch`, :func:`add` or :func:`scale`."""

    def __init__(self, kind: str, site: str, layers, positions="all", *, value=None, source=None, seed=0,
                 pairs=None):
        if not isinstance(site, str):
            raise LaminaError(f"an edit's site must be a site name, not {site!r}.")
        refused = check_site(site).not_editable
        if refused is not None:
            raise LaminaError(f"edits of {site!r} are refused: {refused}.")
        self.kind, self.site, self.layers, self.positions = kind, site, layers, positions
        self.value, self.source, self.seed, self.pairs = value, source, seed, pairs

    def __repr__(self) -> str:
        extra = {"add": lambda: f", vector of {np.size(self.value)}", "scale": lambda: f", {self.value!r}",
                 "resample": lambda: f", seed={self.seed}"}.get(self.kind, lambda: "")()
        return f"edits.{self.kind}({self.site!r}, layers={self.layers!r}{extra}, positions={describe(self.positions)!r})"

    def describe(self) -> dict:
        """JSON-friendly description (for a recording's info and an ``out=DIR`` fingerprint)."""
        out = {"kind": self.kind, "site": self.site, "layers": self.layers if self.layers is None else
               np.atleast_1d(self.layers).tolist(), "positions": describe(self.positions)}
        if self.kind in ("add", "scale"):
            out["value"] = np.asarray(self.value, dtype=np.float64).tolist()
        if self.source is not None:
            out["source"] = {"stimuli": self.source.info.get("stimuli_fingerprint"), "model": self.source.info.get("model"),
                             "path": None if self.source.path is None else str(self.source.path)}
        if self.kind == "resample":
            out["seed"] = self.seed
        if self.pairs is not None:
            out["pairs"] = np.asarray(self.pairs).tolist()
        return out


def zero(site: str, layers=None, *, positions="all") -> Edit:
    """Set ``site`` to zero at ``layers`` (None: every layer) and ``positions``."""
    return Edit("zero", site, layers, positions)


def mean(site: str, layers=None, *, reference, positions="all") -> Edit:
    """Set ``site`` to its mean over every recorded token of ``reference`` (a Recording of that site
    and those layers), one vector per layer."""
    return Edit("mean", site, layers, positions, source=reference)


def resample(site: str, layers=None, *, source, seed: int = 0, positions="all") -> Edit:
    """Set ``site``, token by token, to its value at a random token of ``source`` (a Recording) drawn
    from another sequence than the one edited (any sequence if ``source`` has one); the draws depend
    on ``seed``, the layer and the sequence only, not on batching."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise LaminaError(f"resample's seed must be an integer, not {seed!r}.")
    return Edit("resample", site, layers, positions, source=source, seed=int(seed))


def patch(site: str, layers=None, *, source, positions="all", pairs=None) -> Edit:
    """Activation patching: set ``site`` of sequence i, at position p, to its value in ``source`` (a
    Recording of paired stimuli: as many sequences, of the same lengths) at sequence i, position p.

    ``pairs``: shape ``(n_sequences,)`` ints, the source sequence of each stimulus sequence (default:
    sequence i for i). One clean run patched into many corrupted copies is ``pairs=[0] * n``; the source
    must hold sequence ``pairs[i]`` at every position the edit changes in sequence i."""
    if pairs is not None:
        pairs = np.asarray(pairs)
        if pairs.ndim != 1 or not np.issubdtype(pairs.dtype, np.integer) or (pairs < 0).any():
            raise LaminaError(f"patch's pairs must be one source sequence index (an integer >= 0) per stimulus "
                              f"sequence, not {pairs!r}.")
    return Edit("patch", site, layers, positions, source=source, pairs=pairs)


def add(site: str, layers, vector, *, positions="all") -> Edit:
    """Add ``vector`` (the site's width; a steering vector) to ``site``."""
    return Edit("add", site, layers, positions, value=vector)


def scale(site: str, layers, factor: float, *, positions="all") -> Edit:
    """Multiply ``site`` by ``factor``."""
    if isinstance(factor, bool) or not isinstance(factor, (int, float, np.integer, np.floating)) or not np.isfinite(factor):
        raise LaminaError(f"scale's factor must be a finite number, not {factor!r}.")
    return Edit("scale", site, layers, positions, value=float(factor))


class _Bound:
    """One edit at one layer, bound to a loaded model (its Tap) and, for record, to the stimuli."""

    def __init__(self, edit: Edit, layer: int, tap, width: int, lengths):
        self.edit, self.layer, self.tap, self.width = edit, layer, tap, width
        # An edit may leave a sequence alone (an empty position list): a batch can hold differently edited copies.
        self.kept = None if lengths is None else kept_positions(edit.positions, lengths, allow_empty=True)
        self.cache: dict = {}
        where = f"{edit.site!r} at layer {layer}"
        source = edit.source
        if edit.kind == "add":
            vector = np.asarray(edit.value, dtype=np.float64)
            if vector.shape != (width,) or not np.isfinite(vector).all():
                raise LaminaError(f"add's vector for {where} must be {width} finite values (the site's width), "
                                  f"not shape {vector.shape}.")
            self.vector = torch.as_tensor(vector)
        if source is not None:
            if not hasattr(source, "layer") or not hasattr(source, "tokens"):
                raise LaminaError(f"{edit.kind}'s source for {where} must be a lamina Recording, not {type(source).__name__}.")
            source._slot(edit.site, layer)  # a one-line error if the site or layer was not recorded
            shape = source.shape(edit.site)
            if shape[-1] != width:
                raise LaminaError(f"{edit.kind}'s source holds {edit.site!r} of width {shape[-1]}, the model's is {width}.")
        if edit.kind == "patch":
            self._check_pairs(source, lengths, where)

    def _check_pairs(self, source, lengths, where):
        if lengths is None:
            raise LaminaError(f"patch at {where} pairs sequence i of the source with sequence i of the stimuli: "
                              "use it with lamina.record(model, stimuli, edits=[...]), not editing().")
        pairs = self.edit.pairs
        if pairs is None:
            if source.n_sequences != len(lengths):
                raise LaminaError(f"patch's source has {source.n_sequences} sequences, the stimuli {len(lengths)}; "
                                  "patching pairs sequence i with sequence i (or give pairs=).")
            pairs = np.arange(len(lengths))
        elif len(pairs) != len(lengths) or (pairs >= source.n_sequences).any():
            raise LaminaError(f"patch's pairs must give each of the {len(lengths)} stimulus sequences a source "
                              f"sequence below {source.n_sequences}, not {len(pairs)} values up to {pairs.max()}.")
        tokens = source.tokens
        seq, pos = tokens["sequence"].to_numpy(), tokens["position"].to_numpy()
        if source.info.get("positions") == "all":
            theirs = np.bincount(seq, minlength=source.n_sequences)[pairs]
            if not np.array_equal(theirs, lengths):
                bad = int(np.flatnonzero(theirs != lengths)[0])
                raise LaminaError(f"patch's source has other stimuli lengths (sequence {bad}: {theirs[bad]} tokens, "
                                  f"the stimuli's {lengths[bad]}); patching needs paired sequences of equal length.")
        self.pairs = pairs
        # (source sequence, position) -> row of the source's flat values
        self.lookup = {(int(s), int(p)): r for r, (s, p) in enumerate(zip(seq, pos))}
        for s, k in enumerate(self.kept):
            missing = [int(p) for p in k if (int(pairs[s]), int(p)) not in self.lookup]
            if missing:
                raise LaminaError(f"patch's source did not record sequence {int(pairs[s])} at position {missing[0]}; "
                                  "record the source at every position the edit changes.")

    # ---- values --------------------------------------------------------------------
    def _flat(self):
        if "flat" not in self.cache:
            self.cache["flat"] = torch.as_tensor(self.edit.source.flat(self.edit.site, self.layer))
        return self.cache["flat"]

    def values(self, current: torch.Tensor, seqs: np.ndarray, positions: np.ndarray) -> torch.Tensor:
        """The new values of the tokens ``current`` (``(n, width)``; stimulus sequence and position of each)."""
        kind = self.edit.kind
        if kind == "zero":
            return torch.zeros_like(current)
        if kind == "scale":
            return current * self.edit.value
        if kind == "add":
            return current + self.vector.to(current.device, current.dtype)
        if kind == "mean":
            if "mean" not in self.cache:  # not the source's values too: a sweep keeps many edits bound
                flat = torch.as_tensor(self.edit.source.flat(self.edit.site, self.layer))
                self.cache["mean"] = flat.double().mean(0)
            return self.cache["mean"].to(current.device, current.dtype).expand_as(current)
        if kind == "patch":
            rows = torch.as_tensor([self.lookup[(int(self.pairs[s]), int(p))] for s, p in zip(seqs, positions)],
                                   dtype=torch.long)
            return self._flat()[rows].to(current.device, current.dtype)
        return self._resample(seqs).to(current.device, current.dtype)

    def _resample(self, seqs: np.ndarray) -> torch.Tensor:
        if "seq" not in self.cache:
            self.cache["seq"] = self.edit.source.tokens["sequence"].to_numpy()
        owner, flat = self.cache["seq"], self._flat()
        rows = np.empty(len(seqs), dtype=np.int64)
        for s in np.unique(seqs):
            where = np.flatnonzero(seqs == s)
            pool = np.flatnonzero(owner != s) if len(np.unique(owner)) > 1 else np.arange(len(owner))
            rng = np.random.default_rng([self.edit.seed, self.layer, int(s)])
            rows[where] = pool[rng.integers(0, len(pool), len(where))]
        return flat[torch.as_tensor(rows)]


class Editor:
    """Edits bound to one model (and, for ``record``, its stimuli); :meth:`applied` hooks them."""

    def __init__(self, model, edits, lengths=None):
        if isinstance(edits, Edit):
            edits = [edits]
        if isinstance(edits, (str, bytes, dict)) or not hasattr(edits, "__iter__"):
            raise LaminaError(f"edits must be a list of lamina.edits (zero, mean, resample, patch, add, scale), "
                              f"not {edits!r}.")
        self.model = model
        self.edits = list(edits)
        self.bound: list[_Bound] = []
        for edit in self.edits:
            if not isinstance(edit, Edit):
                raise LaminaError(f"edits must be lamina.edits objects (zero, mean, ...), not {edit!r}.")
            for layer in check_layers(edit.site, edit.layers, model.n_layers):
                t = _tap.taps(model, plan={edit.site: [layer]})[(edit.site, layer)]
                why = t.refusal()
                if why is not None:
                    raise LaminaError(f"cannot edit {edit.site!r} at layer {layer} on {model.adapter.family} "
                                      f"models: {why}.")
                self.bound.append(_Bound(edit, layer, t, model.width(edit.site), lengths))
        self.by_tap: dict = {}
        for b in self.bound:
            self.by_tap.setdefault(b.tap, []).append(b)
        self._where: list | None = None

    def release(self) -> None:
        """Drop the source values the edits keep between passes (resample, patch: the source's tokens
        at the edited site and layer); the next pass reads them again. For a caller that keeps many
        editors bound at once (``prefix.sweep``)."""
        for b in self.bound:
            b.cache.pop("flat", None)

    def describe(self) -> list[dict]:
        seen, out = set(), []
        for b in self.bound:
            if id(b.edit) not in seen:
                seen.add(id(b.edit))
                out.append(b.edit.describe())
        return out

    @contextmanager
    def applied(self, seqs=None, offset: int = 0):
        """Hook the edits on the model's forward passes. ``seqs``: the stimulus sequence of each batch
        row (``record``), with BOS ``offset``; None (``editing``): each call's rows are sequences
        0, 1, ..., and positions index each row's real tokens (``attention_mask``)."""
        hf = self.model.hf
        state: dict = {}

        def on_call(_module, args, kwargs):  # where each edit applies in this forward pass
            if seqs is not None:
                state["where"] = [self._places(b, seqs, offset) for b in self.bound]
                return
            ids = kwargs.get("input_ids", args[0] if args else None)
            mask = kwargs.get("attention_mask")
            if ids is None:
                raise LaminaError("editing() hooks forward passes called with input_ids.")
            n, width = ids.shape[:2]
            real = [np.arange(width)] * n if mask is None else \
                [np.flatnonzero(m) for m in mask.detach().cpu().numpy().astype(bool)]
            lengths = np.array([len(r) for r in real])
            state["where"] = []
            for b in self.bound:
                kept = kept_positions(b.edit.positions, lengths)
                rows = np.concatenate([np.full(len(k), i) for i, k in enumerate(kept)])
                cols = np.concatenate([real[i][k] for i, k in enumerate(kept)])
                state["where"].append((rows, cols, rows, np.concatenate(kept)))

        index = {id(b): i for i, b in enumerate(self.bound)}

        def on_write(t, value):
            new = value.clone()
            for b in self.by_tap[t]:
                rows, cols, s, p = state["where"][index[id(b)]]
                r, c = torch.as_tensor(rows, device=value.device), torch.as_tensor(cols, device=value.device)
                new[r, c] = b.values(new[r, c], s, p)
            return new

        handle = hf.register_forward_pre_hook(on_call, with_kwargs=True)
        try:
            with _tap.hooks(hf, list(self.by_tap), on_write=on_write):
                yield self
        finally:
            handle.remove()

    @staticmethod
    def _places(b: _Bound, seqs, offset: int):
        """(batch rows, model positions, stimulus sequences, stimulus positions) of ``b``'s tokens."""
        kept = [b.kept[int(s)] for s in seqs]
        rows = np.concatenate([np.full(len(k), i) for i, k in enumerate(kept)])
        p = np.concatenate(kept)
        return rows, p + offset, np.asarray(seqs)[rows], p


@contextmanager
def editing(model, edits):
    """Apply ``edits`` to every forward pass of ``model.hf`` inside the block::

        with lamina.editing(model, [lamina.edits.zero("attn.out", 3)]):
            logits = model.hf(input_ids=ids).logits

    Positions (``positions=``) index each row's real tokens (where ``attention_mask`` is 1), BOS
    included when the input has one. :func:`patch` pairs stimuli with a source recording and is
    refused here (use ``lamina.record(..., edits=)``); :func:`resample` treats row i as sequence i.
    """
    if not hasattr(model, "adapter"):
        raise LaminaError("editing() needs a lamina Model; get one with lamina.load(...) or lamina.wrap(hf, tok).")
    with Editor(model, edits).applied():
        yield
