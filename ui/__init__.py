"""Streamlit helpers shared by the pages: the sidebar's settings, cached backends, image display, trajectories."""
