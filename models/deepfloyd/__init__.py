"""DeepFloyd IF, the Fall 2024 course's model: stage I as a lab ``Denoiser`` (``denoiser``), loaded the way users load
it (``loading``), its settings and status (``settings``), and every failure as an exception that names the fix
(``errors``). Nothing here is imported until the IF backend is asked for.
"""
