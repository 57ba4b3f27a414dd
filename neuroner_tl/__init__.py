"""neuroner_tl: NeuroNER's BiLSTM-CRF in TensorFlow 2 / Keras 3, updatable for new domains and
new entity types without the original training data."""

__version__ = "0.1.0"
