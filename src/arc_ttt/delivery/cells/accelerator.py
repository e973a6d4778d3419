# The GPU, its compute capability against this torch's kernels, and the library versions. On the
# Kaggle commit run an unusable GPU stops here: every task would otherwise fall back and score zero.
with scoringrun.rerun_guard(env, "the accelerator check", output_dir):
    gpu = accelerator.gpu_info()
    for line in gpu.lines():
        print(line)
    problem = accelerator.require_usable_gpu(env, cfg.model.device, gpu)
    if problem:
        print("WARNING:", problem)
    n_workers = gpu.count if cfg.model.device == "auto" and not problem else 1
    command = launch.worker_command(n_workers, config_path, [*overrides, *OVERRIDES], cfg.output.dir,
                                    solve_limit=limit)
    print(f"{n_workers} worker(s)" + (": " + " ".join(command) if command else ", in this process"))
