"""The offline wheelhouse for Kaggle: download, check the dependency closure, manifest, verify.

Kaggle runs with the internet off, so whatever the image lacks (bitsandbytes, gguf) ships as a
dataset of wheels. Wheels are downloaded with --no-deps for the Kaggle target (CPython 3.12,
manylinux x86_64) so that torch and CUDA never come along; the closure check then proves that
every `Requires-Dist` of every wheel is met by the wheelhouse itself or by a package the Kaggle
image already has (wheels/kaggle-image-packages.txt).

    arc-ttt wheels build   --requirements wheels/requirements-kaggle.txt --dest wheels/wheelhouse
    arc-ttt wheels check   wheels/wheelhouse
    arc-ttt wheels verify  --requirements wheels/requirements-kaggle.txt --dest build/wheels-verify

Functions here raise WheelhouseError (or return a report); the CLI (arc_ttt.cli) prints and exits.
"""
from __future__ import annotations

import email.parser
import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import asdict, dataclass, field

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

# A distinctive name: the notebook finds the wheels dataset by it, so another dataset's manifest.json
# cannot be mistaken for it.
MANIFEST = "arc-ttt-wheels-manifest.json"
REQUIREMENTS = "requirements.txt"
IMAGE_PACKAGES = os.path.join("wheels", "kaggle-image-packages.txt")
# Never shipped: the image's CUDA build of torch must stay the one in use.
FORBIDDEN = ("torch", "torchvision", "torchaudio", "triton", "nvidia-*")


class WheelhouseError(RuntimeError):
    """A wheelhouse that cannot be used: the message names the folder or file and the problem."""


@dataclass(frozen=True)
class Target:
    """The interpreter and platform the wheels are for, as pip download flags and marker values."""

    python_version: str = "3.12"
    implementation: str = "cp"
    platforms: tuple[str, ...] = ("manylinux2014_x86_64", *(f"manylinux_2_{v}_x86_64" for v in (17, 24, 27, 28, 31, 34, 35)))

    def pip_flags(self) -> list[str]:
        flags = ["--only-binary=:all:", "--python-version", self.python_version, "--implementation", self.implementation]
        for p in self.platforms:
            flags += ["--platform", p]
        return flags

    def markers(self) -> dict[str, str]:
        return {"python_version": self.python_version, "python_full_version": self.python_version + ".0",
                "implementation_name": "cpython", "platform_python_implementation": "CPython",
                "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
                "os_name": "posix", "extra": ""}


KAGGLE = Target()


def this_machine() -> Target:
    """The target for `wheels-verify`: the running interpreter on this machine's platform."""
    v = f"{sys.version_info.major}.{sys.version_info.minor}"
    plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    return Target(python_version=v, platforms=(*KAGGLE.platforms, plat))


@dataclass(frozen=True)
class Wheel:
    file: str
    name: str  # canonical
    version: str
    requires_dist: tuple[str, ...]
    sha256: str = ""


@dataclass
class ClosureReport:
    missing: list[str] = field(default_factory=list)  # "wheel requires X (not in the wheelhouse nor the image)"
    forbidden: list[str] = field(default_factory=list)
    unpinned: list[str] = field(default_factory=list)  # requirements without a wheel in the house

    @property
    def ok(self) -> bool:
        return not (self.missing or self.forbidden or self.unpinned)

    def lines(self) -> list[str]:
        return [*(f"forbidden: {x}" for x in self.forbidden), *(f"missing: {x}" for x in self.missing),
                *(f"no wheel: {x}" for x in self.unpinned)]


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_wheel(path: str) -> Wheel:
    """Name, version and Requires-Dist from the wheel's own METADATA (not from its file name alone)."""
    try:
        name, version, _, _ = parse_wheel_filename(os.path.basename(path))
        with zipfile.ZipFile(path) as z:
            meta = [n for n in z.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
            if len(meta) != 1:
                raise WheelhouseError(f"{path}: expected one .dist-info/METADATA, found {len(meta)}: not a wheel pip "
                                      f"builds; download it again (arc-ttt wheels build --force)")
            msg = email.parser.Parser().parsestr(z.read(meta[0]).decode("utf-8"), headersonly=True)
        said = canonicalize_name(msg["Name"] or ""), Version(msg["Version"] or "")
    except (InvalidWheelFilename, InvalidVersion, zipfile.BadZipFile, UnicodeDecodeError) as e:
        raise WheelhouseError(f"{path}: not a readable wheel ({e}); download it again (arc-ttt wheels build --force)"
                              ) from None
    if said != (name, version):
        raise WheelhouseError(f"{path}: METADATA says {msg['Name']} {msg['Version']}, file name says {name} {version}: "
                              f"a renamed or altered wheel; download it again (arc-ttt wheels build --force)")
    return Wheel(os.path.basename(path), name, str(version), tuple(msg.get_all("Requires-Dist") or ()),
                 sha256_file(path))


def read_wheelhouse(folder: str) -> list[Wheel]:
    if not os.path.isdir(folder):
        raise WheelhouseError(f"{folder}: no such wheelhouse folder: build it with `make wheels` (arc-ttt wheels build)"
                              f" or name the folder that holds the wheels")
    return [read_wheel(os.path.join(folder, f)) for f in sorted(os.listdir(folder)) if f.endswith(".whl")]


def read_requirements(path: str) -> list[Requirement]:
    """Requirement lines of a pip requirements file (comments and blank lines skipped)."""
    if not os.path.isfile(path):
        raise WheelhouseError(f"{path}: no such requirements file")
    reqs = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            try:
                reqs += [Requirement(line)] if line else []
            except InvalidRequirement as e:
                raise WheelhouseError(f"{path}, line {number}: not a requirement ({e})") from None
    return reqs


def read_image_packages(path: str = IMAGE_PACKAGES) -> dict[str, str | None]:
    """Known packages of the Kaggle image: `name` or `name==version` per line -> {canonical name: version|None}."""
    known: dict[str, str | None] = {}
    for req in read_requirements(path):
        pins = [s.version for s in req.specifier if s.operator == "=="]
        known[canonicalize_name(req.name)] = pins[0] if pins else None
    return known


def is_forbidden(name: str) -> bool:
    return any(fnmatch.fnmatch(canonicalize_name(name), pattern) for pattern in FORBIDDEN)


def check_closure(wheels: list[Wheel], image: dict[str, str | None], requirements: list[Requirement] = (),
                  target: Target = KAGGLE) -> ClosureReport:
    """Every requirement (top-level and each wheel's Requires-Dist, for `target`) met by the house or the image.

    A package the image lists without a version satisfies any specifier: the image is
    what it is, and the wheel's own range was chosen by its authors to work with recent releases.
    """
    report = ClosureReport()
    house = {w.name: w for w in wheels}
    for w in wheels:
        if is_forbidden(w.name):
            report.forbidden.append(f"{w.file} (torch and CUDA come from the Kaggle image)")
    for req in requirements:
        w = house.get(canonicalize_name(req.name))
        if w is None or not req.specifier.contains(w.version, prereleases=True):
            report.unpinned.append(f"{req} (wheelhouse has {w.version if w else 'nothing'})")
    for w in wheels:
        for line in w.requires_dist:
            req = Requirement(line)
            env = target.markers()
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            name = canonicalize_name(req.name)
            if name in house:
                if not req.specifier.contains(house[name].version, prereleases=True):
                    report.missing.append(f"{w.name} needs {req}, wheelhouse has {house[name].version}")
            elif name in image:
                have = image[name]
                if have is not None and not req.specifier.contains(have, prereleases=True):
                    report.missing.append(f"{w.name} needs {req}, the image has {have}")
            else:
                report.missing.append(f"{w.name} needs {req}")
    return report


def write_manifest(folder: str, requirements_path: str, target: Target = KAGGLE) -> dict:
    """manifest.json (sha256 per wheel, target) and requirements.txt, written beside the wheels."""
    wheels = read_wheelhouse(folder)
    if os.path.abspath(requirements_path) != os.path.abspath(os.path.join(folder, REQUIREMENTS)):
        shutil.copyfile(requirements_path, os.path.join(folder, REQUIREMENTS))
    text = json.dumps({"target": asdict(target), "requirements": REQUIREMENTS,
                       "requirements_sha256": sha256_file(requirements_path),
                       "wheels": [asdict(w) for w in wheels]}, indent=2)
    with open(os.path.join(folder, MANIFEST), "w", encoding="utf-8") as f:
        f.write(text + "\n")
    return json.loads(text)


def read_manifest(folder: str) -> dict:
    path = os.path.join(folder, MANIFEST)
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except FileNotFoundError:
        raise WheelhouseError(f"{path} missing: run `make wheels` (arc-ttt wheels build) first") from None
    except json.JSONDecodeError as e:
        raise WheelhouseError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(manifest, dict):
        raise WheelhouseError(f"{path}: expected a JSON object: not written by `arc-ttt wheels build`; build again")
    return manifest


def _listed_wheels(folder: str) -> dict[str, str]:
    """file -> sha256 of each wheel the manifest lists."""
    wheels = read_manifest(folder).get("wheels")
    if not isinstance(wheels, list) or not all(isinstance(w, dict) and isinstance(w.get("file"), str)
                                               and isinstance(w.get("sha256"), str) for w in wheels):
        raise WheelhouseError(f"{os.path.join(folder, MANIFEST)}: no `wheels` list of file and sha256: not written by "
                              f"`arc-ttt wheels build`; build the wheelhouse again")
    return {w["file"]: w["sha256"] for w in wheels}


def is_current(folder: str, requirements_path: str, target: Target = KAGGLE) -> bool:
    """True when the wheelhouse was built from these exact requirements for this target and still matches
    its manifest: `make kernel` then skips the download."""
    if not os.path.exists(os.path.join(folder, MANIFEST)) or not os.path.isfile(requirements_path):
        return False  # build says what is missing
    manifest = read_manifest(folder)
    return (manifest.get("requirements_sha256") == sha256_file(requirements_path)
            and manifest.get("target") == json.loads(json.dumps(asdict(target)))
            and not verify_manifest(folder))


def verify_manifest(folder: str) -> list[str]:
    """Problems with a wheelhouse folder against its manifest: missing, extra or altered wheels."""
    listed = _listed_wheels(folder)
    present = {f for f in os.listdir(folder) if f.endswith(".whl")}
    problems = [f"{f}: listed in the manifest but missing" for f in sorted(set(listed) - present)]
    problems += [f"{f}: present but not in the manifest" for f in sorted(present - set(listed))]
    problems += [f"{f}: sha256 differs from the manifest" for f in sorted(present & set(listed))
                 if sha256_file(os.path.join(folder, f)) != listed[f]]
    return problems


def download(requirements_path: str, dest: str, target: Target = KAGGLE, python: str = sys.executable) -> None:
    """pip download the pinned requirements for `target`, without their dependencies (see the module doc)."""
    read_requirements(requirements_path)  # a missing or malformed file said by the kit, before pip runs
    os.makedirs(dest, exist_ok=True)
    done = subprocess.run([python, "-m", "pip", "download", "--no-deps", *target.pip_flags(),
                           "-r", requirements_path, "-d", dest])
    if done.returncode:
        raise WheelhouseError(f"pip download of {requirements_path} failed (exit {done.returncode}; pip's message is "
                              f"above): a pin with no wheel for Python {target.python_version} on the target "
                              f"platform, or no network")


def build(requirements_path: str, dest: str, image_path: str = IMAGE_PACKAGES, target: Target = KAGGLE) -> ClosureReport:
    """Download, check the closure, write the manifest: the wheels dataset's content."""
    download(requirements_path, dest, target)
    wanted = {canonicalize_name(r.name) for r in read_requirements(requirements_path)}
    for f in os.listdir(dest):  # stale wheels of an older pin set would be installed too
        if f.endswith(".whl") and parse_wheel_filename(f)[0] not in wanted:
            os.remove(os.path.join(dest, f))
    report = check_closure(read_wheelhouse(dest), read_image_packages(image_path),
                           read_requirements(requirements_path), target)
    if report.ok:
        write_manifest(dest, requirements_path, target)
    return report


def image_stand_ins(wheels: list[Wheel], image: dict[str, str | None], pins_path: str | None,
                    target: Target) -> list[str]:
    """The image packages the wheels depend on, pinned as in `pins_path` (this machine's requirements.txt).

    The pin matters: an unpinned `torch` would pull a multi-GB CUDA build.
    """
    pins = {canonicalize_name(r.name): str(r) for r in read_requirements(pins_path)} if pins_path else {}
    house = {w.name for w in wheels}
    needed = []
    for w in wheels:
        for line in w.requires_dist:
            req = Requirement(line)
            name = canonicalize_name(req.name)
            if (req.marker is None or req.marker.evaluate(target.markers())) and name in image and name not in house:
                needed.append(pins.get(name, name))
    return sorted(set(needed))


def verify(requirements_path: str, dest: str, pins_path: str | None = "requirements.txt") -> None:
    """Install the wheelhouse offline into a clean venv for this machine and import each package.

    The venv first gets stand-ins for the image's packages that the wheels need (torch, numpy, ...,
    from the normal index at this machine's pins), then the wheelhouse with --no-index
    --find-links: exactly the step the notebook runs on Kaggle.
    """
    house, venv = os.path.join(dest, "wheelhouse"), os.path.join(dest, "venv")
    shutil.rmtree(venv, ignore_errors=True)
    target = this_machine()
    download(requirements_path, house, target)
    wheels, image = read_wheelhouse(house), read_image_packages()
    report = check_closure(wheels, image, read_requirements(requirements_path), target)
    if not report.ok:
        raise WheelhouseError(f"{house}: closure check failed:\n  " + "\n  ".join(report.lines()))
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    py = os.path.join(venv, "bin", "python")
    stand_ins = image_stand_ins(wheels, image, pins_path, target)
    print("image stand-ins:", " ".join(stand_ins))
    if stand_ins:
        subprocess.run([py, "-m", "pip", "install", "--quiet", *stand_ins], check=True)
    subprocess.run([py, "-m", "pip", "install", "--no-index", "--find-links", house, "-r", requirements_path], check=True)
    for req in read_requirements(requirements_path):
        module = IMPORT_NAMES.get(canonicalize_name(req.name), req.name.replace("-", "_"))
        code = f"import {module}; print({module}.__name__, getattr({module}, '__version__', '?'), {module}.__file__)"
        out = subprocess.run([py, "-c", code], check=True, capture_output=True, text=True)
        print("imported", out.stdout.strip())


IMPORT_NAMES = {"pyyaml": "yaml"}
