"""Diffusion Lab: the router. `streamlit run Home.py` opens the lab: every page of both editions at its address, the
sidebar's menu showing the chosen edition's Part A (ui.shell), the page inside the shell."""

from pathlib import Path

import streamlit as st

from ui import guard
from ui.shell import router_pages, run_page
from ui.state import room
from ui.turns import turns, waiting_line

guard.install()  # a browser's clear_cache (every cache of the server) and load_git_info are refused (ui/guard.py)
lecture_link = st.query_params.get("lecture") == "1"  # a lecturer's link opens with the sidebar closed
st.set_page_config(
    page_title="Diffusion Lab",
    page_icon="🌫️",
    layout="wide",
    initial_sidebar_state="collapsed" if lecture_link else "auto",
)
pages = router_pages(Path(__file__).parent)  # every page of both editions and Part B (made once per server: ui/shell)
with turns().turn(waiting_line):  # a burst of browsers runs a few scripts at a time, the rest wait (ui/turns.py)
    page = st.navigation(list(pages.values()), position="hidden")
    room()  # the server's compute queue: the first browser creates it, and it warms every page's default result
    run_page(page.run, page.title, pages, url=page.url_path)
