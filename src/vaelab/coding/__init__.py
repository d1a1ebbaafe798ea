"""Entropy coding, below the models: probability tables in float64, a range coder, fingerprints.

Nothing here knows a model. A model's entropy model (models/entropy_models.py,
models/rd_entropy.py) turns its parameters into :class:`~vaelab.coding.density.CodingTables`
and codes with :mod:`vaelab.coding.rangecoder`; the file format around the streams is the
codec application's (apps/codec/container.py).
"""
