"""Feature extractors, one module each, registered in :mod:`vocalab.features.registry`."""
