"""MSTGAT Explorer: multiscale Transformer-graph attention for geochemical anomalies."""

from importlib.metadata import PackageNotFoundError, version

from .errors import DataError

try:
    __version__ = version("mstgat-explorer")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+local"

__all__ = ["DataError", "__version__"]
