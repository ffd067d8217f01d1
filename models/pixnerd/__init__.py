"""PixNerd, the Fall 2026 course's model: its text-to-image network from the user's checkout of MCG-NJU/PixNerd as a
lab velocity backend (``denoiser``), loaded without running code from its checkpoint (``loading``), its settings and
status (``settings``), and every failure as an exception that names the fix (``errors``). Nothing here is imported
until the PixNerd backend is asked for.
"""
