"""vocalab: reproducible speech classification by how things are said."""

from vocalab.errors import VocalabError

__all__ = ["VocalabError"]
__version__ = "0.1.0"
