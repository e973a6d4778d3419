"""The kit's ARC task generator (`arc-ttt synth`): rule families, each a parameterised concept that yields
thousands of distinct tasks, every task verified before it is written. Torch-free; reads no dev or evaluation
task (the corpus guard drops any generated task that shares a grid with one anyway)."""
