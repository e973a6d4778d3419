"""The Kaggle submission bundle: four folders ready for the `kaggle` CLI, with validated metadata.

    build/kaggle/
      code/     dataset: src/arc_ttt (vendored) + configs/ + BUILD.json     -> kaggle datasets ... -r tar
      wheels/   dataset: the offline wheelhouse, flat, with manifest.json   -> kaggle datasets ...
      model/    dataset: the model folder (optionally prepared/shrunk)      -> kaggle datasets ... -r tar
      kernel/   the notebook + kernel-metadata.json (internet off, GPU on)  -> kaggle kernels push
      publish.sh  the commands, in order

Kaggle's CLI turns internet ON when `enable_internet` is absent and skips sub-folders of a
dataset unless `-r tar`/`-r zip` is given; both mistakes fail silently on the platform, so the
builder writes every field explicitly and refuses metadata it would not accept itself.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field

from . import environment, wheelhouse

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # src/arc_ttt
REPO_DIR = os.path.dirname(os.path.dirname(PACKAGE_DIR))
NOTEBOOK = os.path.join(REPO_DIR, "notebooks", "arc_ttt_submission.ipynb")
DATASET_META = "dataset-metadata.json"
KERNEL_META = "kernel-metadata.json"
OWNER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,48}[a-z0-9]$")  # 3-50 characters


@dataclass(frozen=True)
class BundleSpec:
    config: str  # e.g. configs/kaggle.yaml; the kernel's notebook defaults to it
    model: str | None  # a model folder to ship as a dataset; None with model_source
    out: str = "build/kaggle"
    owner: str = "your-kaggle-username"
    prefix: str = "arc-ttt"  # slugs: <prefix>-code, <prefix>-wheels, <prefix>-model, <prefix>-submission
    competition: str = "arc-prize-2025"
    wheelhouse: str = "wheels/wheelhouse"
    model_source: str | None = None  # a Kaggle model instead: owner/model/framework/variation/version
    prepare: bool = False  # run arc_ttt.model.prepare_model on the weights
    shrink_vocab: bool = False
    machine_shape: str | None = None  # e.g. NvidiaL4, NvidiaTeslaT4; None: Kaggle's default GPU
    private: bool = True
    notebook: str = NOTEBOOK


@dataclass
class Bundle:
    root: str
    commit: str
    folders: dict[str, str] = field(default_factory=dict)  # code/wheels/model/kernel -> path
    ids: dict[str, str] = field(default_factory=dict)  # same keys -> Kaggle id
    commands: list[str] = field(default_factory=list)


class MetadataError(ValueError):
    pass


# --- metadata ----------------------------------------------------------------------------------

def slugify(title: str) -> str:
    """Kaggle's kernel slug from its title: lower case, runs of other characters -> one hyphen."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def _check_id(value: object, what: str) -> list[str]:
    if not isinstance(value, str) or value.count("/") != 1:
        return [f"{what}: id {value!r} is not 'owner/slug'"]
    owner, slug = value.split("/")
    problems = []
    if not OWNER_RE.match(owner):
        problems.append(f"{what}: owner {owner!r} has characters Kaggle does not allow")
    if not SLUG_RE.match(slug):
        problems.append(f"{what}: slug {slug!r} must be 3-50 characters of a-z, 0-9 and '-'")
    return problems


def validate_dataset_metadata(meta: dict, folder: str) -> list[str]:
    problems = _check_id(meta.get("id"), DATASET_META)
    title = meta.get("title")
    if not isinstance(title, str) or not 6 <= len(title) <= 50:
        problems.append(f"{DATASET_META}: title {title!r} must be 6-50 characters")
    licenses = meta.get("licenses")
    if not (isinstance(licenses, list) and licenses and all(isinstance(x, dict) and x.get("name") for x in licenses)):
        problems.append(f"{DATASET_META}: licenses must be a non-empty list of {{'name': ...}}")
    files = [f for f in os.listdir(folder) if f != DATASET_META]
    if not files:
        problems.append(f"{folder}: the dataset has no files")
    return problems


def validate_kernel_metadata(meta: dict, folder: str) -> list[str]:
    problems = _check_id(meta.get("id"), KERNEL_META)
    required = ("id", "title", "code_file", "language", "kernel_type", "is_private", "enable_gpu", "enable_tpu",
                "enable_internet", "dataset_sources", "competition_sources", "kernel_sources", "model_sources")
    problems += [f"{KERNEL_META}: {k} missing" for k in required if k not in meta]
    if meta.get("enable_internet") is not False:
        problems.append(f"{KERNEL_META}: enable_internet must be false (the competition runs offline; "
                        f"the CLI turns it on when absent)")
    title = meta.get("title")
    if not isinstance(title, str) or not 5 <= len(title) <= 50:
        problems.append(f"{KERNEL_META}: title {title!r} must be 5-50 characters")
    elif isinstance(meta.get("id"), str) and slugify(title) != meta["id"].split("/")[-1]:
        problems.append(f"{KERNEL_META}: title {title!r} gives slug {slugify(title)!r}, "
                        f"not the id's {meta['id'].split('/')[-1]!r} (Kaggle would make a new kernel)")
    if meta.get("language") != "python" or meta.get("kernel_type") != "notebook":
        problems.append(f"{KERNEL_META}: expected language python and kernel_type notebook")
    code = meta.get("code_file")
    if not isinstance(code, str) or not os.path.isfile(os.path.join(folder, code)):
        problems.append(f"{KERNEL_META}: code_file {code!r} is not in {folder}")
    for key in ("dataset_sources", "competition_sources", "kernel_sources", "model_sources"):
        if not isinstance(meta.get(key, []), list):
            problems.append(f"{KERNEL_META}: {key} must be a list")
    for ds in meta.get("dataset_sources", []):
        problems += _check_id(ds, f"{KERNEL_META} dataset_sources")
    for ms in meta.get("model_sources", []):
        if not isinstance(ms, str) or len(ms.split("/")) != 5:
            problems.append(f"{KERNEL_META}: model source {ms!r} is not owner/model/framework/variation/version")
    if not meta.get("competition_sources"):
        problems.append(f"{KERNEL_META}: no competition attached")
    return problems


def validate_folder(folder: str) -> list[str]:
    """Validate whichever metadata file the folder holds."""
    for name, check in ((KERNEL_META, validate_kernel_metadata), (DATASET_META, validate_dataset_metadata)):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                return check(json.load(f), folder)
    return [f"{folder}: no {DATASET_META} or {KERNEL_META}"]


def _write_json(path: str, obj: dict) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def dataset_metadata(owner: str, slug: str, title: str) -> dict:
    return {"title": title, "id": f"{owner}/{slug}", "licenses": [{"name": "CC0-1.0"}]}


# --- the four folders ---------------------------------------------------------------------------

def git_commit(repo: str = REPO_DIR) -> str:
    """The commit the bundle is built from; '+dirty' when what gets vendored (src/, configs/, the notebook)
    differs from it, untracked files included; 'unknown' outside git."""
    try:
        sha = subprocess.run(["git", "-C", repo, "rev-parse", "--short=12", "HEAD"], check=True,
                             capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--", "src", "configs", "notebooks"],
                               check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "")


def _copy_tree(src: str, dst: str) -> None:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def write_code(spec: BundleSpec, dst: str, commit: str) -> None:
    """src/arc_ttt as it is in this checkout, plus every config, plus BUILD.json naming the commit."""
    _copy_tree(PACKAGE_DIR, os.path.join(dst, "src", "arc_ttt"))
    configs = os.path.dirname(os.path.abspath(spec.config))
    os.makedirs(os.path.join(dst, "configs"))
    for name in sorted(os.listdir(configs)):
        if name.endswith((".yaml", ".yml")):
            shutil.copy2(os.path.join(configs, name), os.path.join(dst, "configs", name))
    _write_json(os.path.join(dst, "BUILD.json"), {"commit": commit, "config": os.path.basename(spec.config)})


def write_wheels(spec: BundleSpec, dst: str) -> None:
    """The wheelhouse, flat, after checking it still matches its manifest."""
    manifest = os.path.join(spec.wheelhouse, wheelhouse.MANIFEST)
    if not os.path.exists(manifest):
        raise FileNotFoundError(f"{manifest} missing: run `make wheels` first")
    problems = wheelhouse.verify_manifest(spec.wheelhouse)
    if problems:
        raise MetadataError(f"{spec.wheelhouse}: " + "; ".join(problems))
    os.makedirs(dst)
    for name in sorted(os.listdir(spec.wheelhouse)):
        if name.endswith(".whl") or name in (wheelhouse.MANIFEST, wheelhouse.REQUIREMENTS):
            shutil.copy2(os.path.join(spec.wheelhouse, name), os.path.join(dst, name))


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)  # weights are big: a hard link when on the same file system
    except OSError:
        shutil.copy2(src, dst)


def write_model(spec: BundleSpec, dst: str) -> None:
    if spec.prepare or spec.shrink_vocab:
        from ..modeling.loading import prepare_model  # loads torch: only when asked to re-save the weights

        prepare_model(spec.model, dst, shrink_vocab=spec.shrink_vocab)
        return
    if not environment.is_model_dir(spec.model):
        raise FileNotFoundError(f"{spec.model} is not a model folder (config.json + weights, or a .gguf file)")
    shutil.copytree(spec.model, dst, copy_function=_link_or_copy,
                    ignore=shutil.ignore_patterns(".cache", DATASET_META))


def write_kernel(spec: BundleSpec, dst: str, ids: dict[str, str], commit: str) -> None:
    """The notebook with CONFIG defaulting to the bundle's config, and its metadata."""
    with open(spec.notebook, encoding="utf-8") as f:
        nb = json.load(f)
    config_name = os.path.splitext(os.path.basename(spec.config))[0]
    for cell in nb["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            source = "".join(cell["source"])
            source, n = re.subn(r"^CONFIG = None", f"CONFIG = {config_name!r}", source, count=1, flags=re.M)
            if n != 1:
                raise MetadataError(f"{spec.notebook}: the parameters cell has no `CONFIG = None` line")
            cell["source"] = source
        elif cell["cell_type"] == "markdown" and cell.get("id") == "title":
            cell["source"] = "".join(cell["source"]) + f"\n\nBuilt from arc-ttt-kit commit `{commit}`."
    os.makedirs(dst)
    code_file = os.path.basename(spec.notebook)
    with open(os.path.join(dst, code_file), "w", encoding="utf-8") as f:
        json.dump(nb, f, indent=1, ensure_ascii=False)
        f.write("\n")
    title = f"{spec.prefix} submission"
    meta = {
        "id": f"{spec.owner}/{slugify(title)}",
        "title": title,
        "code_file": code_file,
        "language": "python",
        "kernel_type": "notebook",
        "is_private": spec.private,
        "enable_gpu": True,
        "enable_tpu": False,
        "enable_internet": False,
        "dataset_sources": [ids[k] for k in ("code", "wheels", "model") if k in ids],
        "competition_sources": [spec.competition],
        "kernel_sources": [],
        "model_sources": [spec.model_source] if spec.model_source else [],
    }
    if spec.machine_shape:
        meta["machine_shape"] = spec.machine_shape
    _write_json(os.path.join(dst, KERNEL_META), meta)


def publish_commands(bundle: Bundle) -> list[str]:
    """The kaggle CLI calls, in order: datasets first (new version, or create the first time), then the kernel."""
    message = shlex.quote(f"arc-ttt-kit {bundle.commit}")
    cmds = []
    for key in ("code", "wheels", "model"):
        if key not in bundle.folders:
            continue
        p = shlex.quote(bundle.folders[key])
        cmds.append(f"kaggle datasets version -p {p} -r tar -m {message} || kaggle datasets create -p {p} -r tar")
    for key in ("code", "wheels", "model"):
        if key in bundle.ids:  # the kernel can only attach a dataset version that finished processing
            cmds.append(f"until kaggle datasets status {bundle.ids[key]} | grep -q ready; do sleep 10; done")
    cmds.append(f"kaggle kernels push -p {shlex.quote(bundle.folders['kernel'])}")
    return cmds


def build_bundle(spec: BundleSpec) -> Bundle:
    """Write the four folders under spec.out (replacing an older bundle) and validate every metadata file."""
    if (spec.model is None) == (spec.model_source is None):
        raise ValueError("give exactly one of a model folder (--model) or a Kaggle model (--model-source)")
    if not os.path.isfile(spec.config):
        raise FileNotFoundError(f"config {spec.config} not found")
    commit = git_commit()
    root = os.path.abspath(spec.out)
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    bundle = Bundle(root=root, commit=commit)
    titles = {"code": "ARC TTT kit code", "wheels": "ARC TTT kit wheels", "model": "ARC TTT kit model"}
    writers = {"code": lambda d: write_code(spec, d, commit), "wheels": lambda d: write_wheels(spec, d),
               "model": lambda d: write_model(spec, d)}
    for key in ("code", "wheels", "model"):
        if key == "model" and spec.model is None:
            continue
        folder = os.path.join(root, key)
        writers[key](folder)
        slug = f"{spec.prefix}-{key}"
        _write_json(os.path.join(folder, DATASET_META), dataset_metadata(spec.owner, slug, titles[key]))
        bundle.folders[key], bundle.ids[key] = folder, f"{spec.owner}/{slug}"
    bundle.folders["kernel"] = os.path.join(root, "kernel")
    write_kernel(spec, bundle.folders["kernel"], bundle.ids, commit)
    with open(os.path.join(bundle.folders["kernel"], KERNEL_META), encoding="utf-8") as f:
        bundle.ids["kernel"] = json.load(f)["id"]

    problems = [p for folder in bundle.folders.values() for p in validate_folder(folder)]
    if problems:
        raise MetadataError("invalid bundle:\n  " + "\n  ".join(problems))
    bundle.commands = publish_commands(bundle)
    with open(os.path.join(root, "publish.sh"), "w", encoding="utf-8") as f:
        f.write("#!/bin/sh\n# Publish the bundle with the kaggle CLI (needs ~/.kaggle/kaggle.json).\nset -e\n")
        f.write("\n".join(bundle.commands) + "\n")
    os.chmod(os.path.join(root, "publish.sh"), 0o755)
    return bundle
