"""The jobs: digits training (``train``, ``train_elastic``), the convex job (``convex``) and their flags."""
