"""A plug-in module whose import fails (not with ImportError)."""

raise RuntimeError("this module refuses to be imported")
