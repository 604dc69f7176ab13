"""Diffusion Studio: the Gradio UI, the HTTP API and the command line over `pipelines`.

Nothing here runs at import; `app.py` and `python -m studio` are the entry points.
"""
