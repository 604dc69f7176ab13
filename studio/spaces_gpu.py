"""`GPU`: Hugging Face ZeroGPU's decorator when the `spaces` package is installed, a no-op otherwise.

On a ZeroGPU Space, `@GPU(duration=...)` gives the decorated function a GPU while it runs; elsewhere the
same code runs unchanged.
"""
try:
    from spaces import GPU
except ImportError:  # not on a Space: the decorator does nothing, with or without arguments
    def GPU(fn=None, **_options):
        return fn if callable(fn) else (lambda wrapped: wrapped)
