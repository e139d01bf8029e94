"""Classifiers: scikit-learn pipelines (:mod:`.classifiers`), torch heads (:mod:`.sequence`), the ``train`` params (:mod:`.config`)."""
