# The package re-exports its extension module (jiter/__init__.py: `from .jiter import *`).
from .jiter import LosslessFloat as LosslessFloat
from .jiter import __version__ as __version__
from .jiter import cache_clear as cache_clear
from .jiter import cache_usage as cache_usage
from .jiter import from_json as from_json

__all__ = ["LosslessFloat", "__version__", "cache_clear", "cache_usage", "from_json"]
