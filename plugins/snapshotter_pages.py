"""The snapshotter pages for `datasette serve ... --plugins-dir plugins` from a checkout.

The code lives in the package (`snapshotter.datasette.plugin`), so `snapshotter serve` from a
non-editable install runs the same hooks; this file only hands them to Datasette.
"""

from snapshotter.datasette.plugin import *  # noqa: F403
