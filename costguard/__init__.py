"""costguard: a LangGraph agent that turns cloud cost alerts into safe, audited actions."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("costguard")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"
