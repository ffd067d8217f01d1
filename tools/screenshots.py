"""Screenshot every page of the app into docs/screenshots/ (headless Chromium through Playwright).

python tools/screenshots.py [NAME ...]              # e.g. b2_generators; none: every page (whole pages)
python tools/screenshots.py --lecture [NAME ...]    # lecture mode on a 1280x720 projector: what the room sees
                                                    # without scrolling, into docs/screenshots/lecture/
python tools/screenshots.py --emoji [NAME ...]      # the Part A pages on the colour backend (a link's
                                                    # ?backend=Emoji (colour)), into docs/screenshots/emoji/
python tools/screenshots.py --flow [NAME ...]       # the Fall 2026 edition's pages (f1_1_noisy ..., and the
                                                    # welcome page on ?edition=2026), into docs/screenshots/flow/;
                                                    # with --emoji: on the colour flow backend, into flow/emoji/
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from test_browser import FLAGS, ensure_chromium, free_port, launch_app  # noqa: E402

OUT = ROOT / "docs" / "screenshots"


def pages() -> list[tuple[str, str]]:
    """(URL path, screenshot name) of every page."""
    from ui.catalog import PART_A, PART_A_FLOW, PART_B

    return [("", "welcome")] + [(page.url, page.url) for page in PART_A + PART_A_FLOW + PART_B]


def idle(page) -> None:
    """Wait until the page has run and drawn: idle twice, 1.5 s apart (a cached function may start after the first)."""
    busy = '[data-testid="stStatusWidget"], [data-testid="stSpinner"]'  # running, or a cached function computing
    page.wait_for_timeout(1000)
    for _ in range(2):
        page.wait_for_function(
            f"() => !document.querySelector('{busy}') && !/Sampling [.][.][.]|: step \\d+ of \\d+|: starting|waiting: \\d+ request/"
            ".test(document.body.innerText)",
            timeout=300_000,
        )  # a page's progress bar: its runs are not done
        page.wait_for_timeout(1500)


def main() -> None:
    names = {name for _, name in pages()}
    unknown = [a for a in sys.argv[1:] if a not in ("--lecture", "--emoji", "--flow") and a not in names]
    if unknown:  # --help, a typo: say what it takes instead of retaking every page
        sys.exit(f"{__doc__}\nunknown: {' '.join(unknown)}; names: {' '.join(sorted(names))}")
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = launch_app(
        port,
        {"DIFFUSION_LAB_WARM": "1"}  # as a user starts it (tests turn warming off)
        | (
            {"DIFFUSION_LAB_WARM_BACKENDS": "Emoji (colour, flow)" if "--flow" in sys.argv else "Emoji (colour)"}
            if "--emoji" in sys.argv
            else {}
        ),
    )
    try:
        time.sleep(4)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=ensure_chromium(), args=FLAGS)
            lecture, emoji, flow = "--lecture" in sys.argv, "--emoji" in sys.argv, "--flow" in sys.argv
            out = (OUT / "flow" if flow else OUT) / ("lecture" if lecture else "emoji" if emoji else "")
            emoji_name = "Emoji%20(colour,%20flow)" if flow else "Emoji%20(colour)"
            query = "&".join(
                (["lecture=1"] if lecture else [])
                + ([f"backend={emoji_name}"] if emoji else [])
                + (["edition=2026"] if flow else [])
            )
            out.mkdir(parents=True, exist_ok=True)
            page = browser.new_page(
                viewport={"width": 1280, "height": 720} if lecture else {"width": 1400, "height": 1000}
            )
            only = {a for a in sys.argv[1:] if not a.startswith("--")}  # names to retake; none: all
            for path, name in pages():
                part_a = (
                    name.startswith("f") if flow else name.startswith("a")
                )  # --flow: the Fall 2026 edition's Part A
                if (only and name not in only) or ((emoji or flow) and not (name == "welcome" or part_a)):
                    continue  # --emoji, --flow: the Part A pages (and the welcome page's pictures)
                page.goto(f"http://127.0.0.1:{port}/{path}" + (f"?{query}" if query else ""))
                page.get_by_text("Lab settings").first.wait_for(timeout=120_000)
                idle(page)
                if name == "welcome":  # its pictures come from the warm-up
                    page.get_by_text("Computing:").first.wait_for(state="detached", timeout=300_000)
                page.screenshot(path=str(out / f"{name}.png"), full_page=not lecture)
                print(out.relative_to(ROOT) / f"{name}.png", flush=True)
                kind = {
                    "a8_anagrams": "anagram",
                    "a9_hybrids": "hybrid",
                    "f3_3_anagrams": "anagram",
                    "f3_4_hybrids": "hybrid",
                }.get(name)
                from models.emoji_backend import FLOW_ILLUSIONS, ILLUSIONS

                pairs = (FLOW_ILLUSIONS if flow else ILLUSIONS).get(kind)
                if emoji and pairs:  # and the first pair of names this model's illusion works with (its button)
                    first, second, _ = pairs[0]
                    page.get_by_role("button", name=f"{first} / {second}").click()
                    page.mouse.move(0, 0)  # no tooltip over the page
                    idle(page)
                    page.locator("img[src*='media']").first.scroll_into_view_if_needed()  # the pictures, not the form
                    page.screenshot(path=str(out / f"{name}_pair.png"))
                    print(out.relative_to(ROOT) / f"{name}_pair.png", flush=True)
            browser.close()
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
