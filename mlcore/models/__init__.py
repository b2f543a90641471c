"""Recommenders behind one interface (`mlcore.models.base.Recommender`).

`baselines` is NumPy only; `neural` (transformer, cnn) imports TensorFlow.
"""
