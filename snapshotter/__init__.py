"""snapshotter: an offline, queryable archive of a school's OneRoster rostering data."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("snapshotter")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
