"""Mutation testing of the security core, one module at a time (`./dev mutate [MODULE...]`).

Each module is mutated by mutmut against its own unit tests only
(`src/rolegate/authn/jwks.py` against `tests/unit/authn/test_jwks*.py`), so a mutant is killed
by the tests written for that module, not by some end-to-end test that happens to pass through
it, and a run is fast enough for a laptop. mutmut reads its configuration from the
`pyproject.toml` of the directory it runs in, so each module gets a work directory under
`.mutmut/` whose `pyproject.toml` is this project's with `[tool.mutmut]` narrowed to the module,
and links to `src/` and `tests/` (which mutmut copies into its `mutants/` there).

Prints killed/total per module, each survivor, and which survivors are listed in
`tests/mutation-equivalents.md` as equivalent (a mutant that cannot change what the code does,
with the reason). Exits 1 when a survivor is not listed there.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".mutmut"
EQUIVALENTS = ROOT / "tests" / "mutation-equivalents.md"
DEFAULT_PACKAGES = ("src/rolegate/authn", "src/rolegate/authz", "src/rolegate/reading")
KILLED = {1: "killed", 3: "killed", 36: "timeout", 24: "timeout", -24: "timeout",
          152: "timeout", 255: "timeout", 37: "caught by type check"}
NAMED = {0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", None: "not checked"}
MUTANT_NAME = re.compile(r"`([\w.ǁ]+__mutmut_\d+)`")


@dataclass
class Score:
    module: str
    work: Path  # mutmut's directory for this module, where `mutmut show NAME` runs
    statuses: dict[str, str] = field(default_factory=dict)  # mutant name -> status

    @property
    def killed(self) -> list[str]:
        return [m for m, s in self.statuses.items() if s in KILLED.values()]

    @property
    def not_killed(self) -> dict[str, str]:
        return {m: s for m, s in self.statuses.items() if s not in KILLED.values()}


def modules_of(paths: list[str]) -> list[Path]:
    """The Python modules named or contained (`__init__.py` left out: they hold no code)."""
    found: list[Path] = []
    for name in paths:
        path = (ROOT / name).resolve()
        if path.is_dir():
            found += sorted(p for p in path.glob("*.py") if p.name != "__init__.py")
        elif path.suffix == ".py" and path.exists():
            found.append(path)
        else:
            sys.exit(f"mutate: {name} is neither a Python module nor a package directory")
    return [p.relative_to(ROOT) for p in found]


def own_tests(module: Path) -> list[Path]:
    """`src/rolegate/<pkg>/<m>.py` -> `tests/unit/<pkg>/test_<m>.py` and `test_<m>_*.py`."""
    if not module.is_relative_to("src/rolegate"):
        return []
    package = module.parent.relative_to("src/rolegate")
    folder = ROOT / "tests" / "unit" / package
    tests = [folder / f"test_{module.stem}.py", *sorted(folder.glob(f"test_{module.stem}_*.py"))]
    return [t.relative_to(ROOT) for t in tests if t.exists()]


def toml_list(values: list[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def narrowed_pyproject(module: Path, tests: list[Path]) -> str:
    """This project's pyproject.toml with `[tool.mutmut]` narrowed to `module` and `tests`."""
    text = (ROOT / "pyproject.toml").read_text()
    start = text.index("[tool.mutmut]\n")
    end = text.find("\n[", start + 1)
    table = text[start:] if end < 0 else text[start:end + 1]
    table = re.sub(r"(?m)^only_mutate = .*$", f"only_mutate = {toml_list([str(module)])}", table)
    table = re.sub(r"(?m)^pytest_add_cli_args_test_selection = .*$",
                   f"pytest_add_cli_args_test_selection = {toml_list([str(t) for t in tests])}",
                   table)
    return text[:start] + table + ("" if end < 0 else text[end + 1:])


def prepare(module: Path, tests: list[Path]) -> Path:
    work = WORK / ".".join(module.with_suffix("").parts[1:])
    shutil.rmtree(work, ignore_errors=True)  # results of an earlier run would be kept otherwise
    work.mkdir(parents=True)
    for name in ("src", "tests"):
        (work / name).symlink_to(ROOT / name, target_is_directory=True)
    (work / "pyproject.toml").write_text(narrowed_pyproject(module, tests))
    return work


def run(module: Path, tests: list[Path], max_children: int, quiet: bool) -> Score:
    work = prepare(module, tests)
    command = [sys.executable, "-m", "mutmut", "run", f"--max-children={max_children}"]
    with open(work / "mutmut.log", "w") as log:
        done = subprocess.run(command, cwd=work, stdout=log if quiet else None,
                              stderr=subprocess.STDOUT if quiet else None, check=False)
    meta = work / "mutants" / (str(module) + ".meta")
    if done.returncode != 0 or not meta.exists():
        sys.exit(f"mutate: mutmut failed on {module}; see {work / 'mutmut.log'}")
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    return Score(str(module), work, {name: KILLED.get(code) or NAMED.get(code, "suspicious")
                                     for name, code in codes.items()})


def listed_equivalents() -> set[str]:
    return set(MUTANT_NAME.findall(EQUIVALENTS.read_text())) if EQUIVALENTS.exists() else set()


def print_score(score: Score, show: bool) -> bool:
    """One module's line and its unexplained survivors; whether every survivor is listed."""
    equivalents = listed_equivalents()  # read afresh: it may be edited during a long run
    total, killed = len(score.statuses), len(score.killed)
    unexplained = {m: s for m, s in score.not_killed.items() if m not in equivalents}
    percent = f"{100 * killed / total:.0f}%" if total else "-"
    print(f"{score.module:40} {f'{killed}/{total}':>12} {percent:>6}  "
          f"{len(score.not_killed) - len(unexplained):>10}  {len(unexplained):>11}", flush=True)
    for name, status in sorted(unexplained.items()):
        print(f"    {status}: {name}")
        if show:
            diff = subprocess.run([sys.executable, "-m", "mutmut", "show", name], cwd=score.work,
                                  capture_output=True, text=True, check=False).stdout
            print("".join(f"        {line}\n" for line in diff.splitlines()[1:]
                          if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))))
    return not unexplained


HEADER = f"{'module':40} {'killed/total':>12} {'score':>6}      listed  unexplained"


def main() -> None:
    parser = argparse.ArgumentParser(prog="./dev mutate", description=__doc__.split("\n")[0])
    parser.add_argument("modules", nargs="*", help="modules or package directories (default: "
                        "src/rolegate/authn, src/rolegate/authz and, when present, "
                        "src/rolegate/reading)")
    parser.add_argument("--max-children", type=int, default=2,
                        help="mutants tested at once (default 2)")
    parser.add_argument("--tests", nargs="+", help="run every module against these tests "
                        "instead of its own")
    parser.add_argument("--show", action="store_true", help="print the change each survivor "
                        "makes")
    parser.add_argument("-v", "--verbose", action="store_true", help="show mutmut's output")
    args = parser.parse_args()
    paths = args.modules or [p for p in DEFAULT_PACKAGES if (ROOT / p).is_dir()]
    scores: list[Score] = []
    all_listed = True
    for module in modules_of(paths):
        tests = [Path(t) for t in args.tests] if args.tests else own_tests(module)
        if not tests:
            print(f"{module}: no unit tests of its own (tests/unit/.../test_{module.stem}.py)")
            all_listed = False
            continue
        print(f"{module}: against {' '.join(map(str, tests))}", flush=True)
        scores.append(run(module, tests, args.max_children, not args.verbose))
        print(HEADER)
        print_score(scores[-1], args.show)
    print(f"\n{HEADER}")
    for score in scores:
        all_listed &= print_score(score, show=False)
    if not all_listed:
        print(f"\nEach survivor needs a test that kills it, or an entry in "
              f"{EQUIVALENTS.relative_to(ROOT)} saying why no test can. "
              f"`./dev mutate --show MODULE` prints each survivor's change.")
        sys.exit(1)


if __name__ == "__main__":
    main()
