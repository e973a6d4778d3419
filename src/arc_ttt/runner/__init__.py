"""The run: the pipeline recipe, the workers that share tasks, the simulated engine and the report.
Imports the core; loads the model-backed engine only when there are tasks to solve."""
