"""This browser's results: a download under every row of pictures, and "Export my results", a zip holding an offline
HTML write-up of them, page by page as the course's write-up goes, with the settings that made each picture.

A row is kept as the backend's small uint8 images (28 or 64 px: a few KB), its captions and its settings, in this
session's state; PNGs, the HTML and the zip are made when a user clicks, never on a rerun.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
import zipfile
from dataclasses import dataclass, field

import numpy as np
import streamlit as st
from PIL import Image, ImageDraw, ImageFont

KEY = "lab_results"  # session_state: {page title: {row name: Shown}}, in the order shown
PAGE = "lab_page"  # session_state: the page being drawn: its title, its rows so far, the settings it declared
ROW_PX = 128  # each picture's width in a downloaded row


@dataclass
class Shown:
    frames: list[np.ndarray]  # uint8 (H, W, C) at the backend's resolution
    captions: list[str]
    settings: dict[str, str]


@dataclass
class Page:
    title: str
    rows: int = 0
    settings: dict[str, str] = field(default_factory=dict)


def start_page(title: str, base: dict[str, str]) -> None:
    """Called before a page draws: its rows are counted from here, and base (backend, seed) goes with each."""
    st.session_state[PAGE] = Page(title, settings=dict(base))


def describe(**settings) -> None:
    """The settings of this page's pictures (prompt, gamma, i_start, kernel, sigma ...), for the export."""
    page = st.session_state.get(PAGE)
    if page is not None:
        page.settings |= {k: _text(v) for k, v in settings.items()}


def record(frames: list[np.ndarray], captions: list[str] | None, name: str | None = None) -> str | None:
    """Keep a row shown on this page; returns a widget key for its download (None outside a page)."""
    page = st.session_state.get(PAGE)
    if page is None:
        return None
    page.rows += 1
    name = name or f"row {page.rows}"
    captions = list(captions or [""] * len(frames))
    st.session_state.setdefault(KEY, {}).setdefault(page.title, {})[name] = Shown(
        list(frames), captions, dict(page.settings)
    )
    return f"download_{_slug(page.title)}_{page.rows}"


def download_row(frames: list[np.ndarray], captions: list[str] | None, name: str | None = None) -> None:
    """A PNG download of a row of pictures (their captions under them), recorded for the export."""
    key = record(frames, captions, name)
    if key is not None:
        captions = list(captions or [])
        st.download_button(
            "Download (PNG)",
            lambda: row_png(frames, captions),
            f"{key.removeprefix('download_')}.png",
            "image/png",
            key=key,
            help="this row, with its captions",
        )


def row_png(frames: list[np.ndarray], captions: list[str], px: int = ROW_PX) -> bytes:
    """The pictures side by side, enlarged to px wide (crisp pixels), each caption under its picture."""
    font = ImageFont.load_default(size=12)
    tiles = [Image.fromarray(f.squeeze(-1) if f.ndim == 3 and f.shape[-1] == 1 else f).convert("RGB") for f in frames]
    tiles = [t.resize((px, px * t.height // t.width), Image.NEAREST) for t in tiles]
    h = max(t.height for t in tiles) + (20 if any(captions) else 0)
    out = Image.new("RGB", (len(tiles) * (px + 8) - 8, h), "white")
    draw = ImageDraw.Draw(out)
    for i, tile in enumerate(tiles):
        out.paste(tile, (i * (px + 8), 0))
        if i < len(captions) and captions[i]:
            draw.text((i * (px + 8) + px // 2, tile.height + 4), captions[i][:22], fill="black", font=font, anchor="ma")
    buf = io.BytesIO()
    out.save(buf, format="PNG")
    return buf.getvalue()


def export_zip(results: dict[str, dict[str, Shown]], order: list[str]) -> bytes:
    """A zip of index.html (offline: the pictures inlined), each row's PNG and settings.json, pages in `order`."""
    titles = [t for t in order if t in results] + [t for t in results if t not in order]
    buf, sections, listing = io.BytesIO(), [], {}
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for title in titles:
            rows = []
            for name, shown in results[title].items():
                png = row_png(shown.frames, shown.captions)
                path = f"images/{_slug(title)}/{_slug(name)}.png"
                z.writestr(path, png)
                listing.setdefault(title, {})[name] = {
                    "image": path,
                    "captions": shown.captions,
                    "settings": shown.settings,
                }
                rows.append(_row_html(name, png, shown))
            sections.append(f"<section><h2>{html.escape(title)}</h2>{''.join(rows)}</section>")
        z.writestr("settings.json", json.dumps(listing, indent=1, ensure_ascii=False))
        z.writestr("index.html", _HTML.format(body="".join(sections) or "<p>No results yet: open a page first.</p>"))
    return buf.getvalue()


def export_button(order: list[str]) -> None:
    """The sidebar's "Export my results": this browser's results, as shown, in one zip."""
    results = st.session_state.get(KEY, {})
    count = sum(len(rows) for rows in results.values())
    st.download_button(
        f"Export my results ({count} row{'s' if count != 1 else ''})",
        lambda: export_zip(results, order),
        "diffusion_lab_results.zip",
        "application/zip",
        key="export_results",
        disabled=not count,
        help="a zip with an HTML page of every result this browser was shown, page by page, with the "
        "settings that made each; it opens offline",
    )


def _row_html(name: str, png: bytes, shown: Shown) -> str:
    settings = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in shown.settings.items()
    )
    data = base64.b64encode(png).decode()
    return (
        f"<figure><img src='data:image/png;base64,{data}' alt='{html.escape(', '.join(shown.captions))}'>"
        f"<figcaption>{html.escape(name)}</figcaption><table>{settings}</table></figure>"
    )


def _text(v) -> str:
    return f"{v:g}" if isinstance(v, float) else ", ".join(map(str, v)) if isinstance(v, (tuple, list)) else str(v)


def _slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", s.lower()).strip("_") or "page"


_HTML = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Fun with Diffusion Models: my results</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}img{{image-rendering:pixelated;max-width:100%}}
figure{{margin:1em 0 2em}}th{{text-align:left;padding-right:1em;font-weight:normal;color:#555}}</style></head>
<body><h1>Fun with Diffusion Models: my results</h1><p>Made with Diffusion Lab.</p>{body}</body></html>"""
