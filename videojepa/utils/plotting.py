"""matplotlib for the package's pictures: optional (`pip install 'videojepa[plots]'`), file-only (Agg backend)."""

from __future__ import annotations

from videojepa.errors import UserError


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed), or a UserError saying how to install it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError(
            "plots need matplotlib: pip install matplotlib (or pip install 'videojepa[plots]'; `make demo` installs it)"
        ) from None
    return plt
