"""Kaggle's metadata files, as the builder writes them and as Kaggle would accept them.

The `kaggle` CLI sends whatever it is given and exits 0; the server then refuses an unknown licence, an id
with characters it does not allow, a title whose slug is not the id's, or turns internet on when
`enable_internet` is absent. So the builder checks every dataset-metadata.json and kernel-metadata.json
itself, fills them from the templates in kaggle_kernel/templates/, and describes each dataset's licences.
"""
from __future__ import annotations

import json
import os
import re
import zipfile
from email.parser import Parser

from . import wheelhouse
from .accelerator import MACHINE_SHAPES

DATASET_META = "dataset-metadata.json"
KERNEL_META = "kernel-metadata.json"
PLACEHOLDER_OWNER = "your-kaggle-username"
OWNER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]*[a-z0-9]$")
DATASET_SLUG_LEN = (6, 50)  # what the kaggle CLI 2.2.x accepts
KERNEL_SLUG_LEN = (5, 50)
# The licence names Kaggle accepts in dataset-metadata.json (kaggle-api docs/datasets_metadata.md). The CLI sends any
# string and exits 0; only the server refuses, so the builder checks against this list. "other" needs a description.
KAGGLE_LICENSES = ("CC0-1.0", "CC-BY-SA-3.0", "CC-BY-SA-4.0", "CC-BY-NC-SA-4.0", "GPL-2.0", "ODbL-1.0", "DbCL-1.0",
                   "copyright-authors", "other", "unknown", "CC-BY-4.0", "CC-BY-NC-4.0", "PDDL", "CC-BY-3.0",
                   "CC-BY-3.0-IGO", "US-Government-Works", "CC-BY-NC-SA-3.0-IGO", "CDLA-Permissive-1.0",
                   "CDLA-Sharing-1.0", "CC-BY-ND-4.0", "CC-BY-NC-ND-4.0", "ODC-BY-1.0", "LGPL-3.0", "AGPL-3.0",
                   "FDL-1.3", "EU-ODP-Legal-Notice", "apache-2.0", "GPL-3.0")


class MetadataError(ValueError):
    pass


def slugify(title: str) -> str:
    """Kaggle's kernel slug from its title: lower case, runs of other characters -> one hyphen."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def kaggle_owner(env: dict | None = None, home: str | None = None) -> str | None:
    """The Kaggle user name: KAGGLE_USERNAME, else the `username` in the kaggle CLI's kaggle.json."""
    env = os.environ if env is None else env
    if env.get("KAGGLE_USERNAME"):
        return env["KAGGLE_USERNAME"]
    home = os.path.expanduser("~") if home is None else home
    folders = [env.get("KAGGLE_CONFIG_DIR"), os.path.join(home, ".kaggle"), os.path.join(home, ".config", "kaggle")]
    for folder in filter(None, folders):
        path = os.path.join(folder, "kaggle.json")
        if os.path.isfile(path):
            try:
                with open(path, encoding="utf-8") as f:
                    name = json.load(f).get("username")
            except (OSError, ValueError, AttributeError) as e:
                raise MetadataError(f"{path}: cannot read the username ({e})") from None
            if name:
                return name
    return None


def _check_id(value: object, what: str, slug_len: tuple[int, int]) -> list[str]:
    if not isinstance(value, str) or value.count("/") != 1:
        return [f"{what}: id {value!r} is not 'owner/slug'"]
    owner, slug = value.split("/")
    problems = []
    if owner == PLACEHOLDER_OWNER:
        problems.append(f"{what}: owner {owner!r} is the placeholder: pass --owner or set KAGGLE_USERNAME")
    elif not OWNER_RE.match(owner):
        problems.append(f"{what}: owner {owner!r} has characters Kaggle does not allow")
    lo, hi = slug_len
    if not (SLUG_RE.match(slug) and lo <= len(slug) <= hi):
        problems.append(f"{what}: slug {slug!r} must be {lo}-{hi} characters of a-z, 0-9 and '-'")
    return problems


def validate_dataset_metadata(meta: dict, folder: str) -> list[str]:
    problems = _check_id(meta.get("id"), DATASET_META, DATASET_SLUG_LEN)
    title = meta.get("title")
    if not isinstance(title, str) or not 6 <= len(title) <= 50:
        problems.append(f"{DATASET_META}: title {title!r} must be 6-50 characters")
    licenses = meta.get("licenses")
    name = licenses[0].get("name") if isinstance(licenses, list) and len(licenses) == 1 and isinstance(licenses[0], dict) else None
    if not (isinstance(name, str) and name.strip() and "{" not in name):
        problems.append(f"{DATASET_META}: licenses must hold exactly one {{'name': ...}}, got {licenses!r}")
    elif name not in KAGGLE_LICENSES:
        problems.append(f"{DATASET_META}: licence {name!r} is not one Kaggle accepts (the CLI would upload it and the "
                        f"server refuse it); use one of {', '.join(KAGGLE_LICENSES)}, or 'other' with a description")
    elif name == "other" and not str(meta.get("description") or "").strip():
        problems.append(f"{DATASET_META}: licence 'other' needs a description saying which licence applies")
    files = [f for f in os.listdir(folder) if f != DATASET_META]
    if not files:
        problems.append(f"{folder}: the dataset has no files")
    return problems


def validate_kernel_metadata(meta: dict, folder: str) -> list[str]:
    problems = _check_id(meta.get("id"), KERNEL_META, KERNEL_SLUG_LEN)
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
        problems += _check_id(ds, f"{KERNEL_META} dataset_sources", DATASET_SLUG_LEN)
    for ms in meta.get("model_sources", []):
        parts = ms.split("/") if isinstance(ms, str) else []
        if len(parts) != 5 or not all(parts):
            problems.append(f"{KERNEL_META}: model source {ms!r} is not owner/model/framework/variation/version")
        elif not parts[4].isdigit():
            problems.append(f"{KERNEL_META}: model source {ms!r}: the version {parts[4]!r} must be an integer")
    if not meta.get("competition_sources"):
        problems.append(f"{KERNEL_META}: no competition attached")
    if meta.get("enable_gpu"):
        shape = meta.get("machine_shape")
        if shape is None:
            problems.append(f"{KERNEL_META}: enable_gpu without machine_shape gets Kaggle's default GPU (a P100, "
                            f"which today's torch cannot use): set one of {', '.join(MACHINE_SHAPES)}")
        elif shape not in MACHINE_SHAPES:
            problems.append(f"{KERNEL_META}: machine_shape {shape!r} is not one of {', '.join(MACHINE_SHAPES)}")
    return problems


def validate_folder(folder: str) -> list[str]:
    """Validate whichever metadata file the folder holds."""
    for name, check in ((KERNEL_META, validate_kernel_metadata), (DATASET_META, validate_dataset_metadata)):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                return check(json.load(f), folder)
    return [f"{folder}: no {DATASET_META} or {KERNEL_META}"]


def write_json(path: str, obj: dict) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def read_template(templates: str, name: str, **values: str) -> dict:
    """A JSON template from kaggle_kernel/templates/, with the {placeholders} in its strings filled in."""
    path = os.path.join(templates, name)
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise MetadataError(f"template {path}: {e}") from None

    def fill(x):
        if isinstance(x, str):
            return x.format(**values)
        if isinstance(x, list):
            return [fill(v) for v in x]
        if isinstance(x, dict):
            return {k: fill(v) for k, v in x.items()}
        return x

    try:
        return fill(meta)
    except KeyError as e:
        raise MetadataError(f"template {path}: unknown placeholder {e}") from None


def dataset_metadata(owner: str, slug: str, title: str, license_name: str = "apache-2.0") -> dict:
    return {"title": title, "id": f"{owner}/{slug}", "licenses": [{"name": license_name}]}


def dataset_description(key: str, folder: str, commit: str, template: str | None,
                        license_note: str | None = None) -> str | None:
    """The dataset's description: the wheels' own licences (its licence is "other"), the model's licence note
    (`license_note`, needed with licence "other")."""
    parts = [template.strip()] if template else []
    if key == "wheels":
        rows = [f"- {w.file}: {wheel_license(os.path.join(folder, w.file))}" for w in wheelhouse.read_wheelhouse(folder)]
        parts.append("Each wheel keeps its own licence (from its METADATA):\n" + "\n".join(rows))
    if key == "model" and license_note:
        parts.append(license_note)
    if parts:
        parts.append(f"Built by arc-ttt-kit commit {commit}.")
    return "\n\n".join(parts) or None


def wheel_license(path: str) -> str:
    """A wheel's licence from its METADATA (License-Expression, License, or the licence classifiers)."""
    try:
        with zipfile.ZipFile(path) as z:
            name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
            meta = Parser().parsestr(z.read(name).decode("utf-8", "replace"), headersonly=True)
    except (OSError, StopIteration, zipfile.BadZipFile):
        return "unknown (no readable METADATA)"
    for key in ("License-Expression", "License"):
        value = (meta.get(key) or "").strip()
        if value and "\n" not in value and len(value) < 80:
            return value
    classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    return ", ".join(classifiers) or "not stated in METADATA"
