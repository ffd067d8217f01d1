"""Rules of the repository: models/ <- lab/ <- ui/ import one way and never streamlit below ui/; CI runs the README's test command."""

import ast
import re
import tomllib

from conftest import ROOT


def imported_packages(path) -> set[str]:
    """The top-level packages a file imports, at module level or inside functions."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names |= {a.name for a in node.names} if isinstance(node, ast.Import) else set()
        names |= {node.module or ""} if isinstance(node, ast.ImportFrom) and not node.level else set()
    return {n.split(".")[0] for n in names}


def test_lab_and_models_do_not_import_streamlit():
    for path in [*ROOT.glob("lab/**/*.py"), *ROOT.glob("models/**/*.py")]:
        assert "streamlit" not in imported_packages(path), path


def test_the_layers_import_one_way():
    """models/ (networks, their files and schedules, backends) <- lab/ (algorithms, training) <- ui/ <- app_pages/:
    the arrow runs one way, so each layer can be used (and tested) without the ones above it."""
    above = {"models": {"lab", "ui", "app_pages"}, "lab": {"ui", "app_pages"}, "ui": {"app_pages"}}
    for layer, forbidden in above.items():
        for path in ROOT.glob(f"{layer}/**/*.py"):
            assert not imported_packages(path) & forbidden, f"{path.relative_to(ROOT)} imports {imported_packages(path) & forbidden}"


def test_ci_runs_the_readme_test_command_verbatim():
    readme = (ROOT / "README.md").read_text()
    opening = readme.split("\n## ")[0]  # before the first section
    commands = re.findall(r"```(?:bash|sh)\n(.+?)\n```", opening, re.S)
    assert len(commands) == 2, commands  # the README opens with exactly two set-up commands
    assert "streamlit run Home.py" in commands[0]
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands[1].strip() in ci


def test_requirements_pin_cpu_torch_and_keep_torchvision_out():
    reqs = (ROOT / "requirements.txt").read_text()
    assert re.search(r"^torch==2\.13\.0$", reqs, re.M)
    assert "torchvision" not in re.sub(r"#.*", "", reqs)


def test_no_pages_folder_beside_the_router():
    # With a folder named pages/ next to Home.py, Streamlit runs the first session after a server start in its
    # legacy multipage mode: a deep link then shows "Page not found" over the right page (test_browser checks it)
    assert not (ROOT / "pages").exists()
    assert "app_pages/" in (ROOT / "Home.py").read_text()


def test_streamlit_does_not_collect_all_garbage_after_every_rerun():
    # runner.postScriptGC (on by default) runs gc.collect(2) after every run, fragment reruns included: ~100 ms of
    # CPU in a server that has torch and diffusers loaded, twice a second while a training page is watched
    # (benchmarks/bench_ui.py: the server's share went from 0.21 to 0.04 cores with it off)
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["postScriptGC"] is False
