"""publish.sh: the bundle's upload, written as a script the user runs with their own `kaggle` credentials.

The builder never uploads: it writes the commands. Kaggle's CLI 2.2.5 prints some errors and still exits 0,
and a kernel can only attach dataset versions Kaggle has finished processing, so the script stops on error
text as well as on a failed status and waits (bounded) for each dataset before pushing the kernel.
"""
from __future__ import annotations

import shlex


NOT_VALID_HINT = ("A competition that is \"not valid\": the slug is wrong, or you have not joined the competition and "
                  "accepted its rules (on its page: Join Competition). The slug is the last part of the competition "
                  "page URL, kaggle.com/competitions/<slug> (or: kaggle competitions list -s arc); rebuild with "
                  "make kernel KERNEL_ARGS=\"--competition <slug>\". A dataset that is \"not valid\": not published "
                  "yet, or still processing.")


def publish_script(commit: str, folders: dict[str, str], ids: dict[str, str], wait_seconds: int = 1800) -> str:
    """publish.sh for the bundle built from `commit`, whose `folders` (code, wheels, model, kernel) have these
    Kaggle `ids`: each dataset created on first publish and versioned after (one upload each), then a bounded
    wait until Kaggle has processed it (stopping on an error status), then the kernel."""
    message = shlex.quote(f"arc-ttt-kit {commit}")
    lines = [
        "#!/bin/sh",
        "# Publish the bundle with the kaggle CLI (kaggle auth login, KAGGLE_API_TOKEN or ~/.kaggle). Written by arc-ttt kernel build.",
        "set -eu",
        f"WAIT_SECONDS=${{WAIT_SECONDS:-{wait_seconds}}}",
        "# the CLI must run at all: kaggle 2.2.5 installed alone fails on its undeclared dependency six",
        "version=$(kaggle --version 2>&1) || { echo \"$version\" >&2; echo \"stopped: the kaggle CLI does not run "
        "(kaggle --version failed). Install it with what it needs: pip install kaggle six; then sign in "
        "(kaggle auth login, or KAGGLE_API_TOKEN)\" >&2; exit 1; }",
        "echo \"$version\"",
        "checked() {  # run a kaggle command; stop on a failed status OR on error text (CLI 2.2.5 prints '... error: ...'",
        "  # or 'The following are not valid competition sources ...' and exits 0)",
        "  out=$(\"$@\" 2>&1) || { echo \"$out\" >&2; echo \"failed: $*\" >&2; exit 1; }",
        "  echo \"$out\"",
        "  case \"$out\" in",
        "    *[Ee]rror*|*ERROR*) echo \"stopped: the kaggle CLI reported an error (exit status 0): $*\" >&2; exit 1 ;;",
        "    *\"not valid\"*) echo \"stopped: the kaggle CLI could not attach a source (exit status 0): $*\" >&2",
        f"      echo {shlex.quote(NOT_VALID_HINT)} >&2; exit 1 ;;",
        "  esac",
        "}",
        "publish() {  # folder id: create the dataset the first time, add a version after",
        "  if kaggle datasets status \"$2\" >/dev/null 2>&1; then",
        f"    checked kaggle datasets version -p \"$1\" -r tar -m {message}",
        "  else",
        "    checked kaggle datasets create -p \"$1\" -r tar",
        "  fi",
        "}",
        "wait_ready() {  # id: until Kaggle has processed the upload; stop on an error or after WAIT_SECONDS",
        "  waited=0",
        "  while :; do",
        "    status=$(kaggle datasets status \"$1\" 2>&1 || true)",
        "    case \"$status\" in",
        "      *ready*) echo \"$1: ready\"; return 0 ;;",
        "      *rror*|*ailed*) echo \"$1: processing failed: $status\" >&2; exit 1 ;;",
        "    esac",
        "    if [ \"$waited\" -ge \"$WAIT_SECONDS\" ]; then",
        "      echo \"$1: not ready after $WAIT_SECONDS s (last status: $status)\" >&2; exit 1",
        "    fi",
        "    sleep 10; waited=$((waited + 10))",
        "  done",
        "}",
    ]
    keys = [k for k in ("code", "wheels", "model") if k in folders]
    lines += [f"publish {shlex.quote(folders[k])} {ids[k]}" for k in keys]
    lines += [f"wait_ready {ids[k]}" for k in keys]  # the kernel can only attach processed versions
    lines.append(f"checked kaggle kernels push -p {shlex.quote(folders['kernel'])}")
    lines.append(f"echo \"pushed: kaggle kernels status {ids['kernel']}\"")
    return "\n".join(lines) + "\n"
