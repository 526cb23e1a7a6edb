"""A contact sheet of the least confident predictions, for a person to check: one
self-contained HTML file (thumbnails inline), sorted from least to most sure."""

from __future__ import annotations

import html
from pathlib import Path

from classifier.batch.outputs import shown
from classifier.batch.sources import Item, ItemError, Reader
from classifier.encoded import data_uri
from classifier.intake import ImageError, decode_image

THUMBNAIL = (160, 160)
_MISSING = '<div class="missing">no preview</div>'


def write(path: Path, rows: list[dict], items: list[Item], count: int, max_bytes: int) -> None:
    unsure = sorted((r for r in rows if not r["error"]), key=lambda r: float(r["score"]))[:count]
    wanted = {row["path"] for row in unsure}
    # Read in input order, as the workers did: a compressed tar is then read once.
    with Reader(max_bytes) as reader:
        pictures = {shown(item.path): _picture(reader, item) for item in items
                    if shown(item.path) in wanted}
    cells = [_cell(row, pictures.get(row["path"], _MISSING)) for row in unsure]
    Path(path).write_text(_PAGE.format(count=len(cells), cells="\n".join(cells)), encoding="utf-8")


def _picture(reader: Reader, item: Item) -> str:
    try:
        image = decode_image(reader.read(item), draft_size=THUMBNAIL)
    except (ImageError, ItemError, OSError):
        return _MISSING
    image.thumbnail(THUMBNAIL)
    return f'<img src="{data_uri(image, "JPEG", quality=80)}" alt="">'


def _cell(row: dict, picture: str) -> str:
    return (f'<figure>{picture}<figcaption><strong>{html.escape(row["label"])}</strong> '
            f'{100 * float(row["score"]):.0f} %<br><span>{html.escape(row["path"])}</span>'
            '</figcaption></figure>')


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Least confident predictions</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 1.5rem; }}
main {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr)); gap: 1rem; }}
figure {{ margin: 0; }}
img, .missing {{ width: 160px; height: 160px; object-fit: contain; background: #eee; }}
figcaption span {{ color: #666; word-break: break-all; font-size: 12px; }}
</style></head><body>
<h1>The {count} least confident predictions</h1>
<p>Least sure first. Check these by hand.</p>
<main>
{cells}
</main></body></html>
"""
