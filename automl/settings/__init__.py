"""Named choices and defaults, paths, and SearchConfig with every option declared once: the lowest layer."""
