"""The torch-free core: tasks, views, the grid text format, config, the deadline planner, the
submission file and the journal. Everything here runs without a model and imports nothing above it."""
