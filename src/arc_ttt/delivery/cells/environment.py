env = environment.detect(input_root=INPUT_ROOT)
output_dir = OUTPUT_DIR or env.working_dir
if env.on_kaggle:
    # A valid submission.json first (every task, both attempts), before anything below can fail.
    CHALLENGES = CHALLENGES or inputs.find_challenges(INPUT_ROOT, competition=COMPETITION)
    n = scoringrun.write_fallback_submission(CHALLENGES, os.path.join(output_dir, "submission.json"))
    print(f"fallback submission.json written: {n} tasks from {CHALLENGES}")
    for other in inputs.other_challenges(INPUT_ROOT, CHALLENGES):
        print("WARNING: another challenges file is attached and NOT used (set COMPETITION or CHALLENGES):", other)
    # The commit run: no rerun variable. Quick mode also needs every test id to be an evaluation id (the placeholder).
    env = environment.with_test_file(env, CHALLENGES)
    print(environment.run_kind_line(env, CHALLENGES))
    problem = commitrun.check_competitions(env, INPUT_ROOT, COMPETITION)  # two competitions: raises on the commit run
    if problem:
        print("WARNING:", problem)
    build = commitrun.read_build(CODE_SRC)
    print("code dataset BUILD.json:", json.dumps(build), "| kernel built from commit", BUILD_COMMIT)
    fingerprints = commitrun.expected_fingerprints(BUILD_FINGERPRINTS, build)
    for problem in (commitrun.check_build(env, build, BUILD_COMMIT),  # these raise on the commit run
                    commitrun.check_fingerprint(env, "code", CODE_SRC, fingerprints)):
        if problem:
            print("WARNING:", problem)
    try:  # internet is off: what the image lacks comes from the wheels dataset
        wheelhouse = inputs.find_wheelhouse(INPUT_ROOT)
        problem = commitrun.check_fingerprint(env, "wheels", wheelhouse, fingerprints)  # raises on the commit run
        if problem:
            print("WARNING:", problem)
        print("installing offline from", wheelhouse)
        inputs.install_wheelhouse(wheelhouse)
    except (inputs.InputNotFound, subprocess.CalledProcessError) as e:
        if env.commit_run:
            raise  # the commit run stops here; the scoring run carries on with what the image has
        print("WARNING: offline install failed, carrying on with the image's packages:", e)
    importlib.invalidate_caches()
elif env.kind == "colab" and DRIVE_DIR and not OUTPUT_DIR:
    from google.colab import drive

    drive.mount("/content/drive")
    output_dir = DRIVE_DIR
print(env)
