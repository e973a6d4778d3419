"""The edges that ship the kit: what the notebook runs on Kaggle, Colab or locally (environment, inputs,
accelerator, launch, the commit run's checks, the scoring rerun's guard), the Kaggle bundle and the offline
wheelhouse. Nothing below imports them."""
