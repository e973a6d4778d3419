"""The notebook's code cells, one file each: read as text by `delivery.notebook`, never imported (each runs in
the notebook's namespace, after the cells before it)."""
