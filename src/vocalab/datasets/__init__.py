"""Corpus layouts (one module each), the ``data`` params section (:mod:`.config`) and downloads."""
