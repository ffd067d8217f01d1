"""What a server shares between its browsers, without Streamlit (a Ray Serve replica imports it too).

``requests`` (a frozen request per Part A kind, and ``compute``), ``queue`` (one computation per request in flight,
its results store), ``batching`` (many requests' loops as one model call per step), ``defaults`` (what each page
opens with), ``room`` (the server's queue, batchers and warm-up), ``jobs`` and ``train_child`` (Train live's runs,
each a process), ``cluster``, ``serve`` and ``cluster_jobs`` (the same on Ray), ``settings`` (every DIFFUSION_LAB_*
variable). It imports lab/ and models/, never ui/ or Streamlit (tests/test_repo.py keeps it so).
"""
