"""Diffusion Lab: the router. `streamlit run Home.py` opens the lab."""

import streamlit as st

from ui.catalog import PART_A, PART_B, Page
from ui.shell import run_page
from ui.state import room

lecture_link = st.query_params.get("lecture") == "1"  # a lecturer's link opens with the sidebar closed
st.set_page_config(page_title="Diffusion Lab", page_icon="🌫️", layout="wide", initial_sidebar_state="collapsed" if lecture_link else "auto")


def section(part: str, entries: list[Page]) -> list:
    return [st.Page(f"app_pages/{part}/{p.file}", title=p.title, url_path=p.url) for p in entries]


pages = {
    "Diffusion Lab": [st.Page("app_pages/home/welcome.py", title="Welcome", icon="🏠", default=True)],
    "Part A: pretrained diffusion": section("part_a", PART_A),
    "Part B: diffusion from scratch": section("part_b", PART_B),
}
page = st.navigation(pages)
room()  # the server's compute queue: the first browser creates it, and it warms every page's default result
run_page(page.run, page.title)
