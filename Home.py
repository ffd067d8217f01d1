"""Diffusion Lab: the router. `streamlit run Home.py` opens the lab."""

import streamlit as st

st.set_page_config(page_title="Diffusion Lab", page_icon="🌫️", layout="wide")

pages = {
    "Diffusion Lab": [st.Page("pages/welcome.py", title="Welcome", icon="🏠", default=True)],
}
st.navigation(pages).run()
