"""mlcore: sequence models, baselines, evaluation, artifacts and NumPy inference.

Plain Python + NumPy/pandas; TensorFlow only in the training modules
(`mlcore.models.neural`, `mlcore.pipeline`). Importing this package, or
`mlcore.artifacts` / `mlcore.inference` / `mlcore.topk`, never imports
TensorFlow, so web processes stay small.
"""
