"""Rules of the repository: the packages import one way (models <- lab <- serving <- ui <- app_pages), never Streamlit
below ui/, no import cycle anywhere; CI runs the README's test command; the settings are documented."""

import ast
import re
import shlex
import sys
from collections import defaultdict

import pytest
import tomllib
from conftest import ROOT

PACKAGES = ("models", "lab", "serving", "ui")
# ui/ in tiers: a module imports ui/ modules of its own tier or below, never above (and, as everywhere, in no cycle)
UI_TIERS = [
    {
        "ui.catalog",
        "ui.state",
        "ui.identity",
        "ui.turns",
        "ui.guard",
    },  # the server's singletons and the session; page runs' turns; refusals
    {
        "ui.messages",
        "ui.results",
        "ui.display",
        "ui.inputs",
        "ui.controls",
        "ui.progress",
        "ui.editing_view",
        "ui.cfg_view",
        "ui.illusions",
        "ui.recipes",
        "ui.training",
        "ui.partb",
    },
    {"ui.shell"},  # the sidebar and run_page
]


def module_name(path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imports(path) -> set[str]:
    """The modules a file imports, at module level or inside functions (from a import b: a.b where that is a module,
    else a)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            submodules = {
                f"{node.module}.{a.name}" for a in node.names if module_path(f"{node.module}.{a.name}") is not None
            }
            names |= submodules if len(submodules) == len(node.names) else submodules | {node.module}
    return names


def module_path(name: str):
    base = ROOT / name.replace(".", "/")
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def imported_packages(path) -> set[str]:
    """The top-level packages a file imports."""
    return {n.split(".")[0] for n in imports(path)}


def our_modules() -> dict[str, set[str]]:
    """Every module of the packages -> the modules of the packages it imports."""
    graph = {}
    for package in PACKAGES:
        for path in ROOT.glob(f"{package}/**/*.py"):
            graph[module_name(path)] = {
                n for n in imports(path) if n.split(".")[0] in PACKAGES and module_path(n) is not None
            }
    return graph


def test_lab_models_and_serving_do_not_import_streamlit():
    for path in [*ROOT.glob("lab/**/*.py"), *ROOT.glob("models/**/*.py"), *ROOT.glob("serving/**/*.py")]:
        assert "streamlit" not in imported_packages(path), path


def test_the_layers_import_one_way():
    """models/ (networks, their files and schedules, backends) <- lab/ (algorithms, training) <- serving/ (what a
    server shares) <- ui/ <- app_pages/: the arrow runs one way, so each layer can be used (and tested) without the
    ones above it."""
    above = {
        "models": {"lab", "serving", "ui", "app_pages"},
        "lab": {"serving", "ui", "app_pages"},
        "serving": {"ui", "app_pages"},
        "ui": {"app_pages"},
    }
    for layer, forbidden in above.items():
        for path in ROOT.glob(f"{layer}/**/*.py"):
            assert not imported_packages(path) & forbidden, (
                f"{path.relative_to(ROOT)} imports {imported_packages(path) & forbidden}"
            )


def test_ui_imports_its_tiers_one_way():
    tier = {name: i for i, names in enumerate(UI_TIERS) for name in names}
    graph = our_modules()
    ui_modules = {m for m in graph if m.startswith("ui.") and m != "ui"}
    assert ui_modules == set(tier), ui_modules ^ set(tier)  # every ui module has its tier
    for module in ui_modules:
        for target in graph[module]:
            if target.startswith("ui."):
                assert tier[target] <= tier[module], (
                    f"{module} (tier {tier[module]}) imports {target} (tier {tier[target]})"
                )


LONG_MODULES = {  # a module over MAX_LINES, and why it is one module
    "serving/jobs/manager.py": "one class, the job manager's state (submit, stop, the fair queue, its worker); "
    "its folder, permissions and child process are their own modules",
    "lab/flow.py": "the Fall 2026 notebook's functions, one per deliverable, under the notebook's names",
}
MAX_LINES = 400


def test_no_module_is_longer_than_400_lines_without_a_reason():
    for path in sorted(p for package in PACKAGES for p in ROOT.glob(f"{package}/**/*.py")):
        name, lines = path.relative_to(ROOT).as_posix(), len(path.read_text().splitlines())
        assert lines <= MAX_LINES or name in LONG_MODULES, f"{name} has {lines} lines: split it by concern"
    for name in LONG_MODULES:  # a reason outlives its module's length
        assert len((ROOT / name).read_text().splitlines()) > MAX_LINES, f"{name} is short now: drop its reason"


def test_no_module_imports_itself_back():
    """No import cycle between any modules of the packages, imports inside functions included."""
    graph, state, cycles = our_modules(), defaultdict(int), []

    def visit(module, stack):
        state[module] = 1  # on the stack
        for target in sorted(graph.get(module, ())):
            if state[target] == 1:
                cycles.append(stack[stack.index(target) :] + [target])
            elif state[target] == 0:
                visit(target, stack + [target])
        state[module] = 2

    for module in sorted(graph):
        if state[module] == 0:
            visit(module, [module])
    assert not cycles, " ; ".join(" -> ".join(c) for c in cycles)


def test_ci_runs_the_readme_test_command_verbatim():
    readme = (ROOT / "README.md").read_text()
    opening = readme.split("\n## ")[0]  # before the first section
    commands = re.findall(r"```(?:bash|sh)\n(.+?)\n```", opening, re.S)
    assert len(commands) == 2, commands  # the README opens with exactly two set-up commands
    assert "streamlit run Home.py" in commands[0]
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands[1].strip() in ci


def test_the_test_processes_take_the_longest_files_first(pytestconfig):
    """pytest-xdist 3.8 orders a --dist loadfile run's files by their count of tests unless told not to: conftest's
    order was undone, and the Ray file (~13 min of one process) began 9 minutes in and ran alone at the end."""
    assert "--no-loadscope-reorder" in pytestconfig.getini("addopts")
    import conftest

    assert conftest.LONGEST_FIRST[0] == "test_cluster"


def test_requirements_pin_cpu_torch_and_keep_torchvision_out():
    reqs = (ROOT / "requirements.txt").read_text()
    assert re.search(r"^torch==2\.13\.0$", reqs, re.M)
    assert "torchvision" not in re.sub(r"#.*", "", reqs)


def test_no_pages_folder_beside_the_router():
    # With a folder named pages/ next to Home.py, Streamlit runs the first session after a server start in its
    # legacy multipage mode: a deep link then shows "Page not found" over the right page (test_browser checks it)
    assert not (ROOT / "pages").exists()
    assert "router_pages(" in (ROOT / "Home.py").read_text()  # its pages, made in ui/shell.py from app_pages/
    assert 'root / "app_pages' in (ROOT / "ui" / "shell.py").read_text()


def test_streamlit_does_not_collect_all_garbage_after_every_rerun():
    # runner.postScriptGC (on by default) runs gc.collect(2) after every run, fragment reruns included: ~100 ms of
    # CPU in a server that has torch and diffusers loaded, twice a second while a training page is watched
    # (benchmarks/bench_ui.py: the server's share went from 0.21 to 0.04 cores with it off)
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["postScriptGC"] is False


def test_every_setting_is_documented_once_and_the_docs_name_no_other():
    """docs/operating.md's table lists every DIFFUSION_LAB_* variable serving.settings declares, with its default; the
    README and the docs name no variable it does not declare."""
    from serving.settings import VARIABLES

    operating = (ROOT / "docs" / "operating.md").read_text()
    rows = dict(re.findall(r"^\| `(DIFFUSION_LAB_\w+)` \| ([^|]+) \|", operating, re.M))
    assert rows == {v.name: v.default for v in VARIABLES}
    declared = {v.name for v in VARIABLES}
    for doc in [ROOT / "README.md", *ROOT.glob("docs/*.md")]:
        named = set(re.findall(r"DIFFUSION_LAB_[A-Z0-9_]*[A-Z0-9]", doc.read_text()))
        assert named <= declared, (doc.name, named - declared)


def test_code_and_docs_speak_of_the_project_not_of_its_work_history():
    for path in [
        *ROOT.glob("*.md"),
        *ROOT.glob("docs/*.md"),
        *(p for d in (*PACKAGES, "app_pages", "tests", "tools", "benchmarks") for p in ROOT.glob(f"{d}/**/*.py")),
    ]:
        text = path.read_text()
        assert not re.search(r"\bissues? \d+\b", text, re.I), (
            path.relative_to(ROOT),
            re.findall(r".{30}\bissues? \d+\b.{10}", text, re.I),
        )


def readme_app_command() -> list[str]:
    """The README's app command, without its install step: ["streamlit", "run", "Home.py"]."""
    opening = (ROOT / "README.md").read_text().split("\n## ")[0]
    first = re.findall(r"```(?:bash|sh)\n(.+?)\n```", opening, re.S)[0]
    return shlex.split(first.split("&&")[-1])


def test_the_server_a_test_or_benchmark_starts_is_the_one_the_readme_starts(monkeypatch):
    """tests/test_browser.launch_app is how every test, benchmark and tool starts the app: the README's command plus only
    the headless, port and address flags, DIFFUSION_LAB_* settings only, and no STREAMLIT_* variable of the caller's."""
    import subprocess

    import test_browser

    command = test_browser.app_command(8765)
    assert command[:2] == [sys.executable, "-m"] and command[2:5] == readme_app_command() == [
        "streamlit",
        "run",
        "Home.py",
    ]
    flags = command[5:]
    assert flags and set(flags[::2]) <= set(test_browser.SERVER_FLAGS), flags
    assert all(not value.startswith("-") for value in flags[1::2]), flags

    started = []
    monkeypatch.setattr(subprocess, "Popen", lambda args, **kw: started.append((args, kw)))
    monkeypatch.setenv("STREAMLIT_SERVER_FILE_WATCHER_TYPE", "none")  # a developer's shell: not the lecturer's server
    test_browser.launch_app(8765, {"DIFFUSION_LAB_WARM": "1"})
    ((args, kw),) = started
    assert args == command and kw["cwd"] == ROOT
    assert kw["env"]["DIFFUSION_LAB_WARM"] == "1" and not [k for k in kw["env"] if k.startswith("STREAMLIT_")]
    with pytest.raises(ValueError, match="only DIFFUSION_LAB_"):
        test_browser.launch_app(8765, {"STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none"})

    # nothing else starts the app its own way: no other file of tests/, benchmarks/ or tools/ names streamlit's run or a
    # setting of Streamlit's (a flag or a variable)
    own_way = re.compile(
        r"""["']streamlit["'],\s*["']run["']|["']--(server|browser|global|runner|client|theme)\.|STREAMLIT_"""
    )
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("tests", "benchmarks", "tools")
        for path in (ROOT / folder).rglob("*.py")
        if path.name not in ("test_browser.py", "test_repo.py") and own_way.search(path.read_text())
    ]
    assert not offenders, f"these start the app their own way, not through tests/test_browser.launch_app: {offenders}"


def test_a_lecturers_server_watches_no_files():
    """`streamlit run Home.py` is the room's server: a file watcher costs every new browser's session ~0.27 s of the
    server's CPU (it sets up watches over every loaded module); a developer turns it on with a flag (README)."""
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["fileWatcherType"] == "none"
    assert config["server"].get("runOnSave", False) is False


EDITIONS = ("lab/fall2024.py", "lab/fall2026.py")


def course_literals() -> set:
    """The course's literals the edition modules hold: their tuples of three or more numbers, their prompts (strings of
    several words), and their numbers above 200 outside those tuples (3.4's 265 taps)."""
    found, in_rows = set(), set()
    for path in EDITIONS:
        nodes = list(ast.walk(ast.parse((ROOT / path).read_text())))
        for node in nodes:
            if isinstance(node, ast.Tuple) and len(node.elts) >= 3:
                if all(isinstance(e, ast.Constant) and isinstance(e.value, (int, float)) for e in node.elts):
                    found.add(tuple(e.value for e in node.elts))
                    in_rows |= {id(e) for e in node.elts}
        for node in nodes:
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.count(" ") >= 2:
                found.add(node.value)
            elif (
                isinstance(node, ast.Constant)
                and type(node.value) is int
                and node.value > 200
                and id(node) not in in_rows
            ):
                found.add(node.value)
    return found


def docstrings(tree) -> set[int]:
    """ids of the docstring nodes of a module, its classes and functions."""
    owners = [
        tree,
        *(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))),
    ]
    return {
        id(o.body[0].value)
        for o in owners
        if o.body and isinstance(o.body[0], ast.Expr) and isinstance(o.body[0].value, ast.Constant)
    }


def test_a_course_constant_lives_only_in_its_editions_module():
    """One module per edition holds the course's numbers and prompts (lab/fall2024.py, lab/fall2026.py): the app's
    code imports them, never writes them again (docstrings aside)."""
    literals = course_literals()
    assert {
        (250, 500, 750),
        (0.02, 0.04, 0.06, 0.10, 0.14, 0.25, 0.5),
        265,
        "an oil painting of an old man",
    } <= literals
    elsewhere = []
    files = [ROOT / "Home.py", *(p for d in (*PACKAGES, "app_pages") for p in (ROOT / d).rglob("*.py"))]
    for path in files:
        if str(path.relative_to(ROOT)) in EDITIONS:
            continue
        tree = ast.parse(path.read_text())
        skip = docstrings(tree)
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Tuple) and all(isinstance(e, ast.Constant) for e in node.elts):
                value = tuple(e.value for e in node.elts)
            elif isinstance(node, ast.Constant) and type(node.value) in (int, str):
                value = node.value
            else:
                continue
            if value in literals:
                elsewhere.append(f"{path.relative_to(ROOT)}:{node.lineno}: {value!r}")
    assert not elsewhere, "course constants written outside lab/fall2024.py and lab/fall2026.py:\n" + "\n".join(
        elsewhere
    )


def test_every_tool_and_benchmark_script_imports():
    """A script of tools/ or benchmarks/ names only what the modules it imports define: each one is imported (its main
    guarded, so nothing runs) in one fresh interpreter, which fails on the first name that moved or was removed."""
    import subprocess

    scripts = sorted(p for p in [*ROOT.glob("tools/*.py"), *ROOT.glob("benchmarks/*.py")] if p.name != "__init__.py")
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    names = [".".join(p.relative_to(ROOT).with_suffix("").parts) for p in scripts]
    run = subprocess.run([sys.executable, "-c", code, *names], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]


def test_the_request_path_the_architecture_names_is_the_one_a_page_runs():
    """docs/architecture.md lists the files a 3.1 edit runs through, page to network; tools/trace_request.py traces a
    real rerun of the page (every thread's calls): a hop added or removed without the docs saying so fails here."""
    from tools.trace_request import trace

    doc = (ROOT / "docs" / "architecture.md").read_text()
    listed = re.findall(r"`([\w/]+\.py)`", doc.split("<!-- request-path -->")[1].split("<!-- /request-path -->")[0])
    seen = trace("f3_1_edit.py", "Emoji (colour, flow)", ("slider", "edit_test_w", "3.0"))
    traced = list(dict.fromkeys(file for thread in seen.values() for file in thread))
    assert sorted(traced) == sorted(listed), (traced, listed)
    assert list(seen["page"])[0] == "ui/editing_view.py" and "models/emoji_backend.py" in traced  # page to backend
    # the Fall 2024 colour backend's network is the course's UNet in models/emoji_unet.py: its forward ends the path
    seen = trace("a6_cfg.py", "Emoji (colour)", ("slider", "cfg_gamma", "5.0"))
    traced = {file for thread in seen.values() for file in thread}
    assert "models/emoji_backend.py" in traced and not traced & {"models/unet.py", "models/emoji_unet.py"}, traced
