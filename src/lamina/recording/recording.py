"""``Recording``: what ``lamina.record`` returns, in memory or lazily from disk."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import LaminaError, closest
from ..models.sites import SITES, n_entries
from . import store
from .capture import bf16_to_float32

ID_COLUMNS = ("sequence", "position", "slot", "token_id", "next_id")
LOSS_COLUMNS = ("loss", "correct", "predicted_id")  # from the LM head: only in recordings made with loss
TOKEN_COLUMNS = ID_COLUMNS + LOSS_COLUMNS
BOS_COLUMNS = ("bos",)  # only in recordings made with keep_bos=True


@dataclass(frozen=True)
class TokenColumns:
    """A token table not built yet: its numeric columns and an id -> text map (see :func:`token_table`)."""

    columns: dict[str, np.ndarray]
    texts: dict[int, str]


def token_table(cols: dict[str, np.ndarray], texts: dict[int, str]) -> pd.DataFrame:
    """The token table from its numeric columns and an id -> text map.

    Columns: sequence, position, slot (index on the recording's position axis), token_id,
    token, next_id (-1: unknown); with loss (when ``cols`` has the LM head's columns): loss
    (−log p(next token); NaN when next_id is -1), correct (argmax == next token; <NA> when
    unknown), predicted_id, predicted; with ``keep_bos``: bos (True on the BOS token's row, position −1);
    then any per-token columns the stimuli carry (:attr:`lamina.Stimuli.token_columns`), sorted by name.
    """
    with_loss = all(c in cols for c in LOSS_COLUMNS)
    table = pd.DataFrame({c: cols[c] for c in (TOKEN_COLUMNS if with_loss else ID_COLUMNS) + BOS_COLUMNS
                          if c in cols or c not in BOS_COLUMNS})
    table.insert(4, "token", table["token_id"].map(texts))
    if with_loss:
        known = table["next_id"].to_numpy() >= 0
        table["correct"] = pd.array(np.where(known, table["correct"].astype(bool), False), dtype="boolean")
        table.loc[~known, "correct"] = pd.NA
        table["predicted"] = table["predicted_id"].map(texts)
    # The stimuli's own per-token columns (Stimuli.token_columns) after lamina's, by name: a shard
    # stores its tensors sorted by name, so this is the order in memory and on disk alike.
    for name in sorted(set(cols) - set(TOKEN_COLUMNS + BOS_COLUMNS)):
        table[name] = cols[name]
    return table


class Recording:
    """Activations per site as ``(layer, sequence, slot, width)`` arrays, plus a token table.

    ``slot`` indexes the kept positions of each sequence: with ``positions="all"`` slot
    equals position; with ``"last"`` there is one slot. Sequences with fewer kept
    positions than the longest are padded with NaN; :attr:`valid` marks real entries and
    :meth:`flat` returns only those, aligned row for row with :attr:`tokens`.

    The attention sites have more axes: ``attn.heads`` is ``(layer, sequence, slot, head, d_model)``,
    ``attn.pattern`` is ``(layer, sequence, head, slot, key)`` (queries at the kept slots; key j is model
    position j, so with a BOS fed key 0 is the BOS and key t + 1 stimulus token t; keys a sequence does
    not have hold 0). :meth:`flat` of the pattern gives ``(n_tokens, head, key)``.

    Attributes:
        sites: the recorded sites.
        layers: site -> the model layer of each entry on the layer axis.
        tokens: one row per kept (sequence, position); see :func:`token_table` (no loss columns
            when recorded with ``loss=False``).
        meta: the stimuli metadata, one row per sequence.
        info: model, stimuli and settings the recording was made with.
        path: the directory of an on-disk recording, else None.
    """

    def __init__(self, *, layers: dict[str, list[int]], tokens: pd.DataFrame | TokenColumns, meta: pd.DataFrame,
                 n_slots: np.ndarray, info: dict, arrays: dict[str, np.ndarray] | None = None,
                 path: Path | None = None, shards: list[dict] | None = None):
        self.layers, self.meta, self.info = layers, meta, info
        self._tokens = tokens
        self.sites = list(layers)
        self._n_slots = np.asarray(n_slots)
        self._arrays, self.path, self._shards = arrays, path, shards

    @property
    def tokens(self) -> pd.DataFrame:
        """One row per kept (sequence, position); see :func:`token_table`. Built on first use: a recording
        that only feeds arrays to a statistic never pays for the DataFrame (4 ms per 1,000 tokens)."""
        if isinstance(self._tokens, TokenColumns):
            self._tokens = token_table(self._tokens.columns, self._tokens.texts)
        return self._tokens

    @tokens.setter
    def tokens(self, table: pd.DataFrame) -> None:
        self._tokens = table

    # ---- shape and masks -------------------------------------------------------------
    @property
    def n_sequences(self) -> int:
        """Number of recorded sequences (the ``sequence`` axis of every site array)."""
        return len(self._n_slots)

    @property
    def valid(self) -> np.ndarray:
        """Shape ``(n_sequences, n_slots)``: True where a slot holds a real position."""
        width = int(self._n_slots.max())
        return np.arange(width)[None, :] < self._n_slots[:, None]

    def _check(self, site: str) -> None:
        if site not in self.layers:
            raise LaminaError(f"site {site!r} was not recorded; this recording has "
                              f"{', '.join(self.sites)}.{closest(site, self.sites)}")

    def n_entries(self, site: str) -> int:
        """How many layer entries ``site`` has in the model (n_layers, or n_layers + 1 for ``hidden``),
        whatever was recorded of them."""
        self._check(site)
        n_layers = self.info.get("n_layers")
        if site not in SITES or not isinstance(n_layers, int):  # a hand-built recording: what it holds
            return max(self.layers[site]) + 1
        return n_entries(site, n_layers)

    def _slot(self, site: str, layer) -> int:
        """Index on the layer axis of model layer ``layer`` (negative: from the model's last entry)."""
        self._check(site)
        layers = self.layers[site]
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
            raise LaminaError(f"a layer is an integer (a model layer), not {layer!r}.")
        asked, layer = int(layer), int(layer)
        if layer < 0:
            layer += self.n_entries(site)
        if layer not in layers:
            named = f"layer {asked} (model layer {layer})" if asked < 0 else f"layer {layer}"
            raise LaminaError(f"{named} of site {site!r} was not recorded; recorded layers: "
                              f"{_layer_ranges(layers)} of 0–{self.n_entries(site) - 1}.")
        return layers.index(layer)

    # ---- access ----------------------------------------------------------------------
    def __getitem__(self, site: str) -> np.ndarray:
        """Shape ``(layer, sequence, slot, width)`` for ``site`` (reads all shards of a disk recording);
        the attention sites' shapes are in the class docstring."""
        self._check(site)
        if self._arrays is not None:
            return _values(self._arrays[site])
        return np.concatenate([_values(store.read_activations(self.path, e, site)) for e in self._shards], axis=1)

    def layer(self, site: str, layer: int) -> np.ndarray:
        """Shape ``(sequence, slot, width)``: model layer ``layer`` of ``site`` (negative counts from the model's
        last entry; reads only that slice from disk; ``attn.heads``: ``(sequence, slot, head, d_model)``,
        ``attn.pattern``: ``(sequence, head, slot, key)``). A layer that was not recorded is an error."""
        return self._read_slot(site, self._slot(site, layer))

    def _read_slot(self, site: str, slot: int) -> np.ndarray:
        """Entry ``slot`` of the layer axis (a disk recording reads that slice of each shard)."""
        if self._arrays is not None:
            return _values(self._arrays[site][slot])
        return np.concatenate([_values(store.read_activations(self.path, e, site, slot)) for e in self._shards],
                              axis=0)

    def sel(self, site: str, layer=None) -> np.ndarray:
        """Activations of ``site`` selected by **model** layer, not by position on the layer axis.

        The layer axis of ``rec[site]`` counts recorded entries: layer 29 recorded alone is
        ``rec[site][0]``. ``sel`` takes model layers instead.

        Args:
            site: a recorded site.
            layer: a model layer (negative counts from the model's last entry: ``-1`` is ``hidden``'s
                final entry, n_layers, or the last block's output for the other sites), a list of them,
                or None for every recorded layer. A layer that was not recorded is an error naming
                the recorded ones.

        Returns:
            One layer: ``(sequence, slot, width)`` (as :meth:`layer`); a list of ``k`` layers:
            ``(k, sequence, slot, width)`` in the order given; None: ``rec[site]``. Attention sites
            have their own axes after ``(layer, sequence)`` (class docstring). A disk recording reads
            only the selected layers.
        """
        if layer is None:
            return self[site]
        if isinstance(layer, (list, tuple, range, np.ndarray)):
            if len(layer) == 0:
                raise LaminaError(f"an empty list of layers for site {site!r}; give at least one layer.")
            slots = [self._slot(site, l) for l in layer]
            return np.stack([self._read_slot(site, k) for k in slots])
        return self._read_slot(site, self._slot(site, layer))

    def token_array(self, column: str) -> np.ndarray:
        """Shape ``(n_tokens,)``: one column of :attr:`tokens` as a new, writable NumPy array.

        pandas (3.0 and later, copy-on-write) hands out read-only views from ``.to_numpy()`` and
        ``.values``, and ``torch.from_numpy`` / ``torch.as_tensor`` warn about those. This is a copy:
        writing to it, or to a tensor made from it, never changes the recording. ``correct`` (True,
        False or unknown) comes back as float32 1.0, 0.0 or NaN; ``token`` and ``predicted`` as text
        (object) arrays.
        """
        if not isinstance(column, str) or column not in self.tokens.columns:
            names = list(self.tokens.columns)
            raise LaminaError(f"the token table has no column {column!r}; it has {', '.join(names)}."
                              + (closest(column, names) if isinstance(column, str) else ""))
        values = self.tokens[column]
        if isinstance(values.dtype, pd.BooleanDtype):
            return values.astype("Float32").to_numpy(dtype=np.float32, na_value=np.nan, copy=True)
        if values.dtype == object or isinstance(values.dtype, pd.StringDtype):
            return values.to_numpy(dtype=object, copy=True)
        return values.to_numpy(copy=True)

    def to_xarray(self, site: str | None = None, *, layer=None):
        """The recording as labelled arrays (needs ``pip install 'lamina[xarray]'``).

        Args:
            site: one recorded site: an ``xarray.DataArray``; None: every site in one ``xarray.Dataset``
                (its ``layer`` dim is the union of the sites' model layers; a site lacking one holds NaN there).
            layer: model layers to convert, as :meth:`sel` takes them (None: every recorded one; a disk
                recording reads only these).

        Returns:
            Dims ``(layer, sequence, slot, d_model)`` (``mlp.pre``/``mlp.post``: ``d_mlp``; ``attn.heads``:
            ``(layer, sequence, slot, head, d_model)``; ``attn.pattern``: ``(layer, sequence, head, slot, key)``).
            Coordinates: ``layer`` holds model layers (``da.sel(layer=-1)`` is not a model layer: use
            ``da.isel(layer=-1)`` or the number); every token-table column but ``sequence``/``slot`` on
            ``(sequence, slot)`` (``position``, ``token``, ``loss``, ...; padded slots -1 or NaN;
            ``correct`` as 1, 0 or NaN), ``valid``, and the stimuli metadata on ``(sequence,)`` (``meta_<name>``
            where a name is also a token-table column). The values are a copy: changing them never changes
            the recording.
        """
        from .xr import dataset, site_array

        return dataset(self, layer) if site is None else site_array(self, site, layer)

    def shape(self, site: str) -> tuple[int, ...]:
        """``(layer, sequence, slot, width)`` of ``site`` (the attention sites: see the class docstring)
        without reading its activations."""
        self._check(site)
        if self._arrays is not None:
            return tuple(self._arrays[site].shape)
        entry = store.read_manifest(self.path)["sites"][site]
        per_sequence = entry.get("shape") or [int(self._n_slots.max()), entry["width"]]
        return (len(self.layers[site]), self.n_sequences, *(int(n) for n in per_sequence))

    def flat(self, site: str, layer: int) -> np.ndarray:
        """Shape ``(n_tokens, width)``: real positions only, in the row order of :attr:`tokens`
        (``attn.heads``: ``(n_tokens, head, d_model)``; ``attn.pattern``: ``(n_tokens, head, key)``)."""
        values = self.layer(site, layer)
        if site in SITES and SITES[site].slot_axis != 1:  # the pattern's queries come after its heads
            values = np.moveaxis(values, SITES[site].slot_axis, 1)
        return values[self.valid]

    def iter_shards(self, site: str, layer: int):
        """Yield ``(first_sequence, (sequences, slot, width) array)`` shard by shard, for bounded memory."""
        slot = self._slot(site, layer)
        if self._arrays is not None:
            yield 0, _values(self._arrays[site][slot])
            return
        for entry in self._shards:
            yield entry["start"], _values(store.read_activations(self.path, entry, site, slot))

    # ---- disk ------------------------------------------------------------------------
    @classmethod
    def load(cls, path, verify: bool = False) -> "Recording":
        """Open an on-disk recording lazily (arrays are read on access, memory-mapped)."""
        path = Path(path)
        manifest = store.read_manifest(path)
        if manifest is None:
            raise LaminaError(f"{path} is not a lamina recording (no manifest.json).")
        if not manifest.get("complete"):
            done, total = len(manifest["shards"]), manifest["n_shards"]
            raise LaminaError(f"recording {path} is incomplete ({done} of {total} shards); "
                              "run the same record call again to resume it.")
        cols, texts = {}, {}
        for entry in manifest["shards"]:
            store.check_shard(path, entry, full=verify)
            shard_cols, shard_texts = store.read_tokens(path, entry)
            texts.update(shard_texts)
            for key, value in shard_cols.items():
                cols.setdefault(key, []).append(value)
        cols = {k: np.concatenate(v) for k, v in cols.items()}
        meta = store.read_meta(path)
        return cls(layers={s: v["layers"] for s, v in manifest["sites"].items()},
                   tokens=TokenColumns(cols, texts), meta=meta, n_slots=np.array(manifest["n_slots"]),
                   info=manifest["info"], path=path, shards=manifest["shards"])

    def verify(self) -> None:
        """Check every shard's sha256 against the manifest (raises naming the bad shard)."""
        for entry in self._shards or []:
            store.check_shard(self.path, entry, full=True)

    def _repr_html_(self) -> str:
        """The notebook view: model and settings, one row per site (layers, shape), the token table's head."""
        e = html.escape
        info = self.info
        where = f"<code>{e(str(self.path))}</code>" if self.path else "in memory"
        rows = "".join(f"<tr><td><code>{e(s)}</code></td><td>{e(_layer_ranges(self.layers[s]))}</td>"
                       f"<td>{e(str(self.shape(s)))}</td></tr>" for s in self.sites)
        settings = {k: info.get(k) for k in ("positions", "dtype", "loss", "prepend_bos", "device") if k in info}
        setting_text = ", ".join(f"{k} {v}" for k, v in settings.items())
        notes = "".join(f"<li>{e(str(n))}</li>" for n in info.get("notes") or [])
        head = self.tokens.head(10).to_html(index=False, escape=True, border=0, na_rep="—")
        return (
            "<div class='lamina-nb' style='font-family:system-ui,sans-serif;line-height:1.4'>"
            f"<b>Recording</b>: {_count(self.n_sequences, 'sequence')}, {_count(len(self.tokens), 'token')} from "
            f"<b>{e(str(info.get('model', '?')))}</b> ({e(str(info.get('n_layers', '?')))} layers) — {where}<br>"
            f"<span style='color:#666'>{e(setting_text)}</span>"
            + (f"<br>{e(self._loss_text())}{' only, no activation sites' if not self.sites else ''}"
               if self._loss_text() else "")
            + ("<table><tr><th>site</th><th>layers</th><th>shape (layer, sequence, slot, width; attention sites: "
               f"see docs/sites.md)</th></tr>{rows}</table>" if self.sites else "")
            + (f"<details><summary>Stimuli notes</summary><ul>{notes}</ul></details>" if notes else "")
            + f"<details open><summary>Tokens (<code>rec.tokens</code>, first 10 of {len(self.tokens)} rows)</summary>"
            f"{head}</details></div>")

    def _loss_text(self) -> str:
        """``"loss of 511 tokens"`` (tokens with a known next token), or "" without the LM head's columns."""
        if "loss" not in self.tokens.columns:
            return ""
        return f"loss of {_count(int(np.isfinite(self.tokens['loss'].to_numpy()).sum()), 'token')}"

    def __repr__(self) -> str:
        where = f", path={str(self.path)!r}" if self.path else ""
        loss = self._loss_text()
        if not self.sites:  # a loss-only recording (sites=[])
            held = f"{loss}, no activation sites" if loss else "no activation sites"
        else:
            held = "sites: " + ", ".join(f"{s}[{len(v)} layers]" for s, v in self.layers.items())
            held += f"; {loss}" if loss else ""
        return f"Recording({self.n_sequences} sequences, {len(self.tokens)} tokens, {held}{where})"


def _values(array: np.ndarray) -> np.ndarray:
    """Stored activations as NumPy floats: bfloat16 storage (raw bits in uint16) becomes float32."""
    return bf16_to_float32(array) if array.dtype == np.uint16 else array


def _layer_ranges(layers: list[int]) -> str:
    """``[0, 1, 2, 3, 7]`` -> ``'0–3, 7'``: the recorded layers, compactly."""
    spans, start = [], None
    for i, layer in enumerate(layers):
        if start is None:
            start = layer
        if i + 1 == len(layers) or layers[i + 1] != layer + 1:
            spans.append(f"{start}" if start == layer else f"{start}–{layer}")
            start = None
    return ", ".join(spans)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
