"""Grids as pictures: the ARC palette, one cell a square of pixels with a grey line between, a PNG embedded in
HTML. One drawing for the run's report and the generator's gallery (matplotlib only when a picture is drawn)."""
from __future__ import annotations

import base64
import io
from typing import Sequence

import numpy as np

# The usual ARC colours 0..9: black, blue, red, green, yellow, grey, magenta, orange, azure, maroon.
PALETTE = np.array([
    [0, 0, 0], [0, 116, 217], [255, 65, 54], [46, 204, 64], [255, 220, 0],
    [170, 170, 170], [240, 18, 190], [255, 133, 27], [127, 219, 255], [135, 12, 37],
], dtype=np.uint8)
LINE = np.array([85, 85, 85], dtype=np.uint8)


def grid_image(grid: np.ndarray, cell: int = 12) -> np.ndarray:
    """H x W grid -> RGB image with `cell`-pixel squares separated by 1-pixel lines."""
    g = np.asarray(grid, dtype=np.int64)
    h, w = g.shape
    img = np.empty((h * (cell + 1) + 1, w * (cell + 1) + 1, 3), dtype=np.uint8)
    img[:] = LINE
    for r in range(h):
        y = r * (cell + 1) + 1
        row = np.repeat(PALETTE[g[r]], cell, axis=0).reshape(w, cell, 3)
        for c in range(w):
            x = c * (cell + 1) + 1
            img[y:y + cell, x:x + cell] = row[c]
    return img


def png_data_uri(img: np.ndarray) -> str:
    import matplotlib  # only when a picture is drawn: the report works without it

    matplotlib.use("Agg", force=False)
    from matplotlib import image as mpimg  # optional as above: the report works without matplotlib

    buf = io.BytesIO()
    mpimg.imsave(buf, img, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def cell_size(grids: Sequence[np.ndarray]) -> int:
    """Pixels per cell so the largest grid shown is about 160 pixels wide."""
    side = max(max(np.asarray(g).shape) for g in grids)
    return max(3, min(14, 160 // side))


def figure(label: str, grid, cell: int, ok: bool | None = None) -> str:
    """One grid as an HTML figure with its label and shape (a tick when `ok`); "none" for a missing grid."""
    if grid is None:
        return f'<figure><div class="none">none</div><figcaption>{label}</figcaption></figure>'
    mark = "" if ok is None else (' <b class="ok">✓</b>' if ok else "")
    uri = png_data_uri(grid_image(np.asarray(grid), cell))
    shape = "x".join(map(str, np.asarray(grid).shape))
    return f'<figure><img src="{uri}" alt="{label}"><figcaption>{label} {shape}{mark}</figcaption></figure>'


CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f3f3f3}td.l{text-align:left}.ok{color:#1a7f37}.bad{color:#b42318}
.task{margin:1.2em 0;padding:.6em;border:1px solid #ddd;border-radius:6px}
.row{display:flex;gap:14px;align-items:flex-start;flex-wrap:wrap}figure{margin:0}
figcaption{font-size:12px;color:#555;text-align:center}.none{width:60px;height:60px;background:#eee;
display:flex;align-items:center;justify-content:center;color:#999;font-size:12px}
"""
