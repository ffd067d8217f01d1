"""What the pages say when something is wrong or missing: messages without the server's paths, and a page that
stops to wait for its user."""

from __future__ import annotations

import re
from typing import NoReturn

from serving.settings import ROOT
from ui.state import runs_root


def plain(text: str) -> str:
    """text (a user's prompt, a file's name, a message that quotes them) as Markdown that draws no link, image or HTML
    from it: brackets and angle brackets escaped, and the autolinks' "://" and "www." broken by an escape (CommonMark's
    backslash escapes draw the character itself). The rest reads as written."""
    text = re.sub(r"([\\\[\]<>])", r"\\\1", str(text))
    return text.replace("://", r":\/\/").replace("www.", r"www\.")


def for_browser(message: str) -> str:
    """A message without the server's paths: a run's folder becomes "run <id>", the lab's own files relative paths
    (drawn through plain(): it may quote what a user typed)."""
    runs = re.escape(str(runs_root().resolve()))
    message = re.sub(rf"{runs}/([\w.-]+)/?", lambda m: f"run {m.group(1)}: ", message)
    return message.replace(str(ROOT) + "/", "")


class PageWaits(Exception):
    """Raised by page_waits: the page stops here (an upload or a run to come), the sidebar is still drawn."""


def page_waits() -> NoReturn:
    """End the page here until the user gives what it waits for (it has said what). Unlike st.stop, the sidebar's
    "Export my results" after the page is still drawn (st.stop drops everything drawn after it)."""
    raise PageWaits
