"""The edges that ship the kit: environment detection (Kaggle, Colab, local), the Kaggle bundle and
the offline wheelhouse. Nothing below imports them."""
