# Last: submission.json re-validated against the challenges, rewritten from the journals if it is not valid.
if env.on_kaggle:
    with scoringrun.rerun_guard(env, "the final check", output_dir):
        print(scoringrun.finalize_submission(CHALLENGES, output_dir))
