"""The Kaggle submission bundle: four folders ready for the `kaggle` CLI, with validated metadata.

The metadata comes from the templates in kaggle_kernel/templates/ (titles, slugs, licences, the
kernel's fixed fields); the builder fills in the owner, sources and accelerator, and writes:

    kaggle_kernel/build/
      code/     dataset: src/arc_ttt (vendored) + configs/ + BUILD.json     -> kaggle datasets ... -r tar
      wheels/   dataset: the offline wheelhouse, flat, with its manifest    -> kaggle datasets ... -r tar
      model/    dataset: the model folder (optionally prepared/shrunk)      -> kaggle datasets ... -r tar
      kernel/   the notebook + kernel-metadata.json (internet off, GPU on)  -> kaggle kernels push
      publish.sh  create-or-version each dataset, wait until ready (bounded), push the kernel

Kaggle's CLI turns internet ON when `enable_internet` is absent, skips sub-folders of a dataset
unless `-r tar`/`-r zip` is given, and without `machine_shape` gives a P100 that today's torch
cannot use; all three fail silently on the platform, so the builder writes every field explicitly
and refuses metadata it would not accept itself (`delivery.metadata`); `delivery.publish` writes publish.sh.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from ..core.config import RunConfig, load_config
from ..core.errors import MissingInputError, UserError
from ..core.modelfolder import DEMO_MARKER, ModelInfo, describe_model, make_portable, mark_demo
from ..core.formats.codec import TokenizerFormatError
from ..core.formats import codec_for, names as format_names, write_format_file
from ..core.gridconfig import require_grid_model
from . import wheelhouse
from .accelerator import MACHINE_SHAPES, check_machine_shape
from .commitrun import BUILD_FILE
from .environment import transformers_version
from .fingerprint import code_fingerprint, folder_fingerprint
from .inputs import GRID_MODEL_DIR, is_model_dir
from .metadata import (DATASET_META, KERNEL_META, PLACEHOLDER_OWNER, MetadataError, dataset_description, kaggle_owner,
                       read_template, slugify, validate_folder, write_json)
from .publish import publish_script

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # src/arc_ttt
REPO_DIR = os.path.dirname(os.path.dirname(PACKAGE_DIR))
CODE_FILE = "arc_ttt_submission.ipynb"
TEMPLATES = os.path.join(REPO_DIR, "kaggle_kernel", "templates")
DEFAULT_OUT = os.path.join("kaggle_kernel", "build")
DEMO_ENV = "ARC_TTT_KERNEL_DEMO"  # set by `make kernel KERNEL_DEMO=1`: the demonstration model asked for explicitly


@dataclass(frozen=True)
class BundleSpec:
    config: str  # e.g. configs/kaggle.yaml; the kernel's notebook defaults to it
    model: str | None  # a model folder to ship as a dataset; None with model_source
    out: str = DEFAULT_OUT
    owner: str | None = None  # None: KAGGLE_USERNAME or the username in the kaggle CLI's kaggle.json
    prefix: str = "arc-ttt"  # slugs: <prefix>-code, <prefix>-wheels, <prefix>-model, <prefix>-submission
    competition: str | None = None  # None: the config's kaggle.competition
    wheelhouse: str = "wheels/wheelhouse"
    model_source: str | None = None  # a Kaggle model instead: owner/model/framework/variation/version
    prepare: bool = False  # run arc_ttt.modeling.export.prepare_model on the weights
    shrink_vocab: bool = False
    machine_shape: str | None = None  # overrides the config's kaggle.machine_shape
    model_license: str = "apache-2.0"  # the weights' own licence (SmolLM2: Apache-2.0), one of KAGGLE_LICENSES
    model_license_note: str | None = None  # the description; needed with "other" (e.g. the Llama 3 licence)
    format: str | None = None  # the model's prompt format when neither the config nor the folder names it
    private: bool = True
    templates: str = TEMPLATES
    demo: bool = False  # ship the kit's demonstration model anyway (it scores about 0); also ARC_TTT_KERNEL_DEMO=1

    @cached_property
    def run_config(self) -> RunConfig:
        """The config the kernel runs, read once (format, grid model, competition and machine come from it)."""
        return load_config(self.config)


@dataclass
class Bundle:
    root: str
    commit: str
    machine_shape: str = ""
    format: str = ""  # the prompt format the kernel runs the model in
    format_source: str = ""
    model_lines: list[str] = field(default_factory=list)  # what is shipped, as `make kernel` prints it
    folders: dict[str, str] = field(default_factory=dict)  # code/wheels/model/kernel -> path
    fingerprints: dict[str, str] = field(default_factory=dict)  # code/wheels/model -> delivery.fingerprint
    ids: dict[str, str] = field(default_factory=dict)  # same keys -> Kaggle id
    commands: list[str] = field(default_factory=list)


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


def resolve_format(spec: BundleSpec, info: ModelInfo | None) -> tuple[str, str]:
    """(the prompt format the kernel runs the model in, where it came from). `--format` wins, then the config's
    model.format, then the folder's arc_format.json. A folder that names none, with a config that says "auto", is
    refused: the kit's own layout would be a silent guess, and a model trained in another layout scores ~0. So is a
    config that names another format than the folder, unless --format says which wins (the bundle's arc_format.json
    is rewritten: the notebook would never see the conflict)."""
    configured = spec.run_config.model.format
    if spec.format:
        if spec.format not in format_names():
            raise MetadataError(f"--format {spec.format!r}: choose one of {', '.join(format_names())}")
        return spec.format, "--format"
    if configured != "auto":
        if info is not None and info.format and info.format != configured:
            raise MetadataError(f"{os.path.basename(spec.config)} says model.format: {configured} but the model folder's "
                                f"arc_format.json says {info.format}: a model run in another layout than it was trained "
                                f"in scores about 0. Say which wins with --format (KERNEL_FORMAT={info.format} or "
                                f"KERNEL_FORMAT={configured})")
        return configured, f"model.format in {os.path.basename(spec.config)}"
    if info is not None and info.format:
        return info.format, "the model folder's arc_format.json"
    where = f"model folder {spec.model} has no arc_format.json" if spec.model else f"Kaggle model {spec.model_source}"
    raise MetadataError(f"{where} and {spec.config} says model.format: auto: name the prompt format the model was "
                        f"trained in with --format ({', '.join(format_names())}; KERNEL_ARGS=\"--format nvarc\") or "
                        f"model.format in the config (configs/kaggle-nvarc.yaml etc. name theirs)")


def check_tokenizer(spec: BundleSpec, fmt: str) -> None:
    """The model folder's tokenizer speaks `fmt` (each symbol one token, the format's markers present), or the build
    stops: otherwise only the commit run on Kaggle would find it. A GGUF-only folder or a Kaggle model is not checked."""
    if spec.model is None or not os.path.isfile(os.path.join(spec.model, "config.json")):
        return
    from transformers import AutoTokenizer  # reason: build time only, and only for a model folder shipped

    try:
        tokenizer = AutoTokenizer.from_pretrained(spec.model, local_files_only=True)
    except (OSError, ValueError) as e:
        raise MetadataError(f"{spec.model}: no tokenizer loads from the model folder ({e})") from None
    try:
        codec_for(fmt, tokenizer)
    except TokenizerFormatError as e:
        raise MetadataError(f"{spec.model}: {e}. Name the format it was trained in (--format, KERNEL_FORMAT)") from None


def demo_allowed(spec: BundleSpec, env: Mapping[str, str] | None = None) -> bool:
    """Whether the demonstration model was asked for: BundleSpec.demo, or ARC_TTT_KERNEL_DEMO=1 (make kernel KERNEL_DEMO=1)."""
    env = os.environ if env is None else env
    return spec.demo or env.get(DEMO_ENV, "").strip().lower() not in ("", "0", "false", "no")


def check_demo(spec: BundleSpec, info: ModelInfo | None) -> bool:
    """True when the kit's demonstration model ships, asked for; refuse it when not asked for: it checks the pipeline
    end to end and scores about 0, so a bundle of it by default is a submission spent for nothing."""
    if info is None or info.kind != "demo":
        return False
    if not demo_allowed(spec):
        raise MetadataError(f"{spec.model} is the kit's demonstration model (SmolLM2-135M + the kit's small adapter): it "
                            f"would score about 0 on the competition. Ship your ARC model (make kernel "
                            f"KERNEL_MODEL=path/to/model), or, to check the pipeline end to end on Kaggle with the demo, "
                            f"ask for it: make kernel KERNEL_DEMO=1 (arc-ttt kernel build --demo, or {DEMO_ENV}=1)")
    return True


def model_lines(spec: BundleSpec, info: ModelInfo | None, fmt: str, fmt_source: str) -> list[str]:
    """What `make kernel` says about the model it ships."""
    here = transformers_version()
    if info is None:
        return [f"model: Kaggle model {spec.model_source} (not checked here)",
                f"  prompt format: {fmt} ({fmt_source}); transformers here: {here}"]
    lines = [f"model: {spec.model}", f"  {info.summary()}", f"  prompt format: {fmt} ({fmt_source}); "
             f"written portably for transformers 4.x and 5.x (this builder: transformers {here})"]
    return lines + info.warnings(fmt)


def build_record(spec: BundleSpec, commit: str, fmt: str, fmt_source: str, info: ModelInfo | None) -> dict:
    """BUILD.json: what the bundle was built from and ships; the notebook prints it and checks the commit."""
    model = ({"source": spec.model_source} if info is None else
             {"kind": info.kind, "architecture": info.architecture, "base": info.base,
              "saved_with_transformers": info.saved_with, "folder": os.path.basename(os.path.normpath(spec.model))})
    return {"commit": commit, "config": os.path.basename(spec.config), "format": fmt, "format_source": fmt_source,
            "model": model, "builder_transformers": transformers_version()}


def write_code(spec: BundleSpec, dst: str, record: dict) -> None:
    """src/arc_ttt as it is in this checkout, plus every config, plus BUILD.json (`build_record`, with the
    fingerprints of the other datasets and of this one's src/ and configs/)."""
    _copy_tree(PACKAGE_DIR, os.path.join(dst, "src", "arc_ttt"))
    configs = os.path.dirname(os.path.abspath(spec.config))
    os.makedirs(os.path.join(dst, "configs"))
    for name in sorted(os.listdir(configs)):
        if name.endswith((".yaml", ".yml")):
            shutil.copy2(os.path.join(configs, name), os.path.join(dst, "configs", name))
    grid = grid_model(spec)
    if grid is not None:  # the notebook finds it there by name (delivery/inputs.find_grid_model)
        shutil.copytree(grid, os.path.join(dst, GRID_MODEL_DIR))
    fingerprints = {**record.get("fingerprints", {}), "code": code_fingerprint(os.path.join(dst, "src"))}
    write_json(os.path.join(dst, BUILD_FILE), {**record, "fingerprints": fingerprints})


def grid_model(spec: BundleSpec) -> str | None:
    """The grid model folder the config's candidate sources need (inference.sources naming grid), checked; else
    None. Small (at most tens of MB), so it travels in the code dataset."""
    inference = spec.run_config.inference
    if "grid" not in inference.sources:
        return None
    require_grid_model(inference.grid.path)
    return inference.grid.path


def check_wheelhouse(spec: BundleSpec) -> None:
    """The wheelhouse has its manifest and still matches it (no wheel missing, added or altered)."""
    manifest = os.path.join(spec.wheelhouse, wheelhouse.MANIFEST)
    if not os.path.exists(manifest):
        raise MissingInputError(f"{manifest} missing: run `make wheels` (arc-ttt wheels build) first")
    problems = wheelhouse.verify_manifest(spec.wheelhouse)
    if problems:
        raise MetadataError(f"{spec.wheelhouse}: " + "; ".join(problems))


def write_wheels(spec: BundleSpec, dst: str) -> None:
    """The wheelhouse, flat (check_wheelhouse has checked it against its manifest)."""
    os.makedirs(dst)
    for name in sorted(os.listdir(spec.wheelhouse)):
        if name.endswith(".whl") or name in (wheelhouse.MANIFEST, wheelhouse.REQUIREMENTS):
            shutil.copy2(os.path.join(spec.wheelhouse, name), os.path.join(dst, name))


def _link_or_copy(src: str, dst: str) -> None:
    """Weights are big: a hard link when on the same file system and already world-readable (a link shares
    the mode, and the bundle's files are made 0644), else a copy."""
    if os.stat(src).st_mode & 0o044 == 0o044:
        try:
            os.link(src, dst)
            return
        except OSError:
            pass
    shutil.copy2(src, dst)


def write_model(spec: BundleSpec, dst: str, fmt: str, demo: bool = False) -> None:
    """The weights, hard-linked or copied (or re-saved by prepare_model), with config.json and
    tokenizer_config.json rewritten portably (never through a hard link) and arc_format.json naming `fmt`."""
    if spec.prepare or spec.shrink_vocab:
        from ..modeling.export import prepare_model  # loads torch: only when asked to re-save the weights

        # the resolved prompt format decides what shrinking keeps and what the folder's arc_format.json says
        prepare_model(spec.model, dst, shrink_vocab=spec.shrink_vocab, fmt=fmt)
    else:
        shutil.copytree(spec.model, dst, copy_function=_link_or_copy,
                        ignore=shutil.ignore_patterns(".cache", DATASET_META))
    make_portable(dst)
    path = os.path.join(dst, "arc_format.json")
    if os.path.exists(path):
        os.unlink(path)  # may be a hard link to the source folder's file
    write_format_file(dst, fmt)
    if demo and not os.path.exists(os.path.join(dst, DEMO_MARKER)):  # the notebook says it too; never via a link
        mark_demo(dst)


def kernel_parameters(spec: BundleSpec, commit: str, fmt: str, demo: bool, fingerprints: dict[str, str]) -> dict:
    """The notebook's parameters the builder sets: config, competition (--competition, else the config's
    kaggle.competition), prompt format, the commit BUILD.json must name, whether the demo model is allowed, and
    the fingerprints the attached datasets must have (delivery.fingerprint)."""
    competition = spec.competition or spec.run_config.kaggle.competition
    return {"CONFIG": os.path.splitext(os.path.basename(spec.config))[0], "COMPETITION": competition, "FORMAT": fmt,
            "BUILD_COMMIT": commit, "ALLOW_DEMO": demo, "BUILD_FINGERPRINTS": dict(fingerprints)}


def write_kernel(spec: BundleSpec, dst: str, ids: dict[str, str], owner: str, machine_shape: str,
                 parameters: dict) -> None:
    """The notebook with `parameters` (kernel_parameters) set through its parameters cell, and its metadata."""
    import nbformat  # reason: a build-time dependency only; nothing at run time needs it

    from . import notebook  # reason: it needs nbformat too, at build time only

    nb = notebook.build(parameters, note=f"Built from arc-ttt-kit commit `{parameters['BUILD_COMMIT']}`; "
                                         f"prompt format `{parameters['FORMAT']}`.")
    os.makedirs(dst)
    with open(os.path.join(dst, CODE_FILE), "w", encoding="utf-8") as f:
        f.write(nbformat.writes(nb) + "\n")
    meta = read_template(spec.templates, KERNEL_META, prefix=spec.prefix)
    meta.update({
        "id": f"{owner}/{slugify(meta.get('title', ''))}",
        "code_file": CODE_FILE,
        "is_private": spec.private,
        "enable_internet": False,  # whatever the template says: the CLI turns internet on when absent
        "dataset_sources": [ids[k] for k in ("code", "wheels", "model") if k in ids],
        "competition_sources": [parameters["COMPETITION"]],
        "model_sources": [spec.model_source] if spec.model_source else [],
        "machine_shape": machine_shape,
    })
    write_json(os.path.join(dst, KERNEL_META), meta)


def _make_readable(root: str) -> None:
    """Every file readable by all (0644 at least; a copy keeps a private 0600 mode), folders 0755.
    Hard-linked weights are already readable (see _link_or_copy), so their source is never touched."""
    for folder, _, files in os.walk(root):
        os.chmod(folder, 0o755)
        for name in files:
            path = os.path.join(folder, name)
            mode = stat.S_IMODE(os.stat(path).st_mode)
            if mode & 0o444 != 0o444:
                os.chmod(path, mode | 0o644)


def check_spec(spec: BundleSpec) -> tuple[str, ModelInfo | None, str]:
    """(owner, what the model folder is, machine shape), or the error that stops the build before anything is written."""
    if (spec.model is None) == (spec.model_source is None):
        raise UserError("give exactly one of a model folder (--model) or a Kaggle model (--model-source)")
    if not os.path.isfile(spec.config):
        raise MissingInputError(f"config {spec.config} not found")
    owner = spec.owner or kaggle_owner()
    if not owner or owner == PLACEHOLDER_OWNER:
        raise MetadataError("no Kaggle owner: pass --owner (make kernel KERNEL_ARGS=\"--owner you\") or set "
                            "KAGGLE_USERNAME. The kaggle CLI's newer sign-ins (kaggle auth login, KAGGLE_API_TOKEN, "
                            "~/.kaggle/access_token) carry no username; only a legacy kaggle.json does")
    if spec.model is not None and not is_model_dir(spec.model):
        missing = not os.path.exists(spec.model)
        why = "it does not exist" if missing else "it holds neither config.json + weights nor a .gguf file"
        raise (MissingInputError if missing else UserError)(
            f"{spec.model} is not a model folder: {why}. Pass the model's folder with --model (make kernel "
            f"KERNEL_MODEL=path/to/model)")
    grid_model(spec)  # a grid source without its model stops the build here, the key named
    info = describe_model(spec.model) if spec.model is not None else None
    machine_shape = spec.machine_shape or spec.run_config.kaggle.machine_shape
    if machine_shape is None:
        raise MetadataError(f"{spec.config}: no kaggle.machine_shape and no --machine-shape; without one Kaggle gives "
                            f"its default GPU (a P100, which today's torch cannot use). Use one of "
                            f"{', '.join(MACHINE_SHAPES)}")
    check_machine_shape(machine_shape)
    return owner, info, machine_shape


def write_dataset(spec: BundleSpec, key: str, folder: str, owner: str, commit: str, writer) -> str:
    """One dataset folder written by `writer` with its dataset-metadata.json; returns its Kaggle id."""
    writer(folder)
    t = read_template(spec.templates, f"dataset-{key}.json", prefix=spec.prefix, model_license=spec.model_license)
    meta = {"title": t.get("title"), "id": f"{owner}/{t.get('slug')}", "licenses": t.get("licenses")}
    description = dataset_description(key, folder, commit, t.get("description"), spec.model_license_note)
    if description:
        meta["description"] = description
    write_json(os.path.join(folder, DATASET_META), meta)
    return meta["id"]


def build_bundle(spec: BundleSpec) -> Bundle:
    """Write the four folders under spec.out (replacing an older bundle) and validate every metadata file."""
    owner, info, machine_shape = check_spec(spec)
    fmt, fmt_source = resolve_format(spec, info)
    check_tokenizer(spec, fmt)
    demo = check_demo(spec, info)
    check_wheelhouse(spec)  # before the older bundle is removed
    commit = git_commit()
    root = os.path.abspath(spec.out)
    shutil.rmtree(root, ignore_errors=True)
    try:
        os.makedirs(root)
    except OSError as e:
        raise UserError(f"{root}: cannot write the bundle there ({e.strerror or e}): pass another --out") from None
    bundle = Bundle(root=root, commit=commit, machine_shape=machine_shape, format=fmt, format_source=fmt_source,
                    model_lines=model_lines(spec, info, fmt, fmt_source))
    record = build_record(spec, commit, fmt, fmt_source, info)
    fp = bundle.fingerprints
    writers = {"wheels": lambda d: write_wheels(spec, d), "model": lambda d: write_model(spec, d, fmt, demo=demo),
               "code": lambda d: write_code(spec, d, {**record, "fingerprints": dict(fp)})}
    for key in ("wheels", "model", "code"):  # the code dataset last: its BUILD.json holds the others' fingerprints
        if key == "model" and spec.model is None:
            continue
        folder = os.path.join(root, key)
        bundle.folders[key], bundle.ids[key] = folder, write_dataset(spec, key, folder, owner, commit, writers[key])
        fp[key] = code_fingerprint(os.path.join(folder, "src")) if key == "code" else folder_fingerprint(folder)
    bundle.folders["kernel"] = os.path.join(root, "kernel")
    write_kernel(spec, bundle.folders["kernel"], bundle.ids, owner, machine_shape,
                 kernel_parameters(spec, commit, fmt, demo, fp))
    with open(os.path.join(bundle.folders["kernel"], KERNEL_META), encoding="utf-8") as f:
        bundle.ids["kernel"] = json.load(f)["id"]

    problems = [p for folder in bundle.folders.values() for p in validate_folder(folder)]
    if problems:
        raise MetadataError("invalid bundle:\n  " + "\n  ".join(problems))
    script = publish_script(bundle.commit, bundle.folders, bundle.ids)
    bundle.commands = [line for line in script.splitlines() if line.startswith(("publish ", "wait_ready ", "checked kaggle "))]
    with open(os.path.join(root, "publish.sh"), "w", encoding="utf-8") as f:
        f.write(script)
    _make_readable(root)
    os.chmod(os.path.join(root, "publish.sh"), 0o755)
    return bundle
