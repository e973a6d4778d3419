"""How far apart the LLM probes of `condition: llm` are, for one LLM and for others: what SAME_FEATURES rests on.

    .venv/bin/python benchmarks/training/llm_probe.py        (after `make model`; about a minute, a few GB of RAM)

A grid model trained on an LLM's features keeps that LLM's probe in its card (`gridcondition.probe`: the last hidden
states over a fixed prompt, projected on 8 fixed directions) and refuses a run whose LLM's probe is further than
`core.gridconfig.SAME_FEATURES` (relative L2). The pairs measured, on SmolLM2-135M:
    one LLM    the base in float32 against bfloat16; the committed adapter merged into the shrunk bf16 folder
               (models/smollm2-135m-arc) in float32 against bfloat16; base + committed adapter (float32) against
               that merged folder (the folder a Kaggle run loads)
    others     the base against base + the committed adapter; the committed adapter against the one before it (the
               long run's previous leg, read from git history at PREVIOUS)
Writes benchmarks/training/results/llm_probe_distances.json.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import torch

from arc_ttt.core.gridconfig import SAME_FEATURES, GridLLMConfig, probe_distance
from arc_ttt.modeling.gridcondition import load_encoder

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks/: the shared provenance.py
from provenance import provenance, write_result  # noqa: E402
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository
BASE, MERGED = "models/smollm2-135m", "models/smollm2-135m-arc"
ADAPTER = "configs/adapters/smollm2-135m-arc"
PREVIOUS = "cfb16de"  # the commit where the long run's first leg shipped: the adapter before the committed one
OUT = os.path.join(ROOT, "benchmarks", "training", "results", "llm_probe_distances.json")


def adapter_at(commit: str, dst: str) -> str:
    """The committed adapter folder as it was at `commit`, written to `dst`."""
    os.makedirs(dst)
    for name in ("adapter_config.json", "adapter_model.safetensors", "finetune.json"):
        blob = subprocess.run(["git", "show", f"{commit}:{ADAPTER}/{name}"], cwd=ROOT, check=True,
                              capture_output=True).stdout
        with open(os.path.join(dst, name), "wb") as f:
            f.write(blob)
    return dst


def main() -> None:
    torch.set_num_threads(min(2, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as tmp:
        llms = {"base fp32": GridLLMConfig(path=BASE, dtype="float32"),
                "base bf16": GridLLMConfig(path=BASE, dtype="bfloat16"),
                "base + adapter fp32": GridLLMConfig(path=BASE, adapter=ADAPTER, dtype="float32"),
                "merged fp32": GridLLMConfig(path=MERGED, dtype="float32"),
                "merged bf16": GridLLMConfig(path=MERGED, dtype="bfloat16"),
                "base + previous adapter fp32": GridLLMConfig(path=BASE, adapter=adapter_at(PREVIOUS, f"{tmp}/prev"),
                                                              dtype="float32")}
        records = {name: load_encoder(cfg, torch.device("cpu")).record for name, cfg in llms.items()}
    pairs = [("one", "base fp32", "base bf16"), ("one", "merged fp32", "merged bf16"),
             ("one", "base + adapter fp32", "merged fp32"), ("one", "base + adapter fp32", "merged bf16"),
             ("other", "base fp32", "base + adapter fp32"), ("other", "base fp32", "merged bf16"),
             ("other", "base + adapter fp32", "base + previous adapter fp32")]
    rows = [{"llm": kind, "a": a, "b": b, "distance": round(probe_distance(records[a], records[b]), 4)}
            for kind, a, b in pairs]
    print(f"| same LLM? | a | b | distance | read as the same (<= {SAME_FEATURES}) |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['llm']} | {r['a']} | {r['b']} | {r['distance']:.4f} | {r['distance'] <= SAME_FEATURES} |")
    write_result(OUT, {"kind": "LLM probe distances", "same_features": SAME_FEATURES, "rows": rows,
                       "previous_adapter_commit": PREVIOUS, "load": list(os.getloadavg()),
                       "provenance": provenance(model_folder=MERGED, adapter=ADAPTER)})


if __name__ == "__main__":
    main()
