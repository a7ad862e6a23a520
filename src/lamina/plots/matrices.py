"""Matrices: similarity matrices as images with a colour bar."""

from __future__ import annotations


def matrix_image(ax, matrix, *, vmin=None, vmax=None, cmap="magma", colorbar=True, label=None):
    """Show ``matrix`` (shape ``(n, m)``) with ``imshow``; returns the image."""
    image = ax.imshow(matrix, vmin=vmin, vmax=vmax, cmap=cmap, interpolation="nearest", aspect="auto")
    if colorbar:
        bar = ax.figure.colorbar(image, ax=ax, pad=0.01, fraction=0.047)
        bar.ax.tick_params(labelsize=8)
        if label:
            bar.set_label(label)
    return image
