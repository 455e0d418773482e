"""The installed version (a module of its own so that any module may import it without cycles)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("funasr-subs")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"
