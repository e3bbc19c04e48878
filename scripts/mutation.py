"""Mutation testing of the modules that decide offload's guarantees (``make mutation``).

Runs mutmut (``pip install -e '.[dev]'`` brings it) on the modules in ``MODULES`` against the
tests listed for each, in a scratch copy under ``.mutation/`` (the working tree is never
touched), and prints the kill rate per module.

Two kinds of mutants are excluded from the rate, and counted in their own columns:

* ``message``: a survivor that only changes the text of a human-readable message (a string
  literal with a space in it, everything else on the line unchanged) — no test should pin the
  wording of every error message; listed with ``-v``;
* ``pragma``: lines marked ``# pragma: no mutate (reason)`` in the source, for *equivalent*
  mutants (``False`` → ``None`` where only truthiness is read, a value replaced on the next
  line); mutmut does not generate them, the column counts the marked lines.

Timeouts count as killed (the mutant hung the code under test).

::

    python scripts/mutation.py                 # every module in the table
    python scripts/mutation.py routing/plan    # only modules whose path contains this
    python scripts/mutation.py -v              # also list surviving and excluded mutants

Not part of ``.ci/run``: it takes minutes (one mutmut child per core by default; ``-j N``).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tokenize
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = ROOT / ".mutation"
TARGET = 0.90

# module (under src/offload)   owner        tests that guard it (tests/*.py)
MODULES: list[tuple[str, str, str]] = [
    ("routing/policy.py", "failover", "test_policy test_router"),
    ("routing/retry.py", "failover", "test_retry test_router"),
    ("routing/router.py", "failover", "test_router test_batch_router"),
    ("routing/plan.py", "failover", "test_router test_plan"),
    ("batching/output.py", "batchsafe", "test_batch_units test_batch_safety"),
    ("batching/inputs.py", "batchsafe", "test_batch_units test_batch_safety test_batch_schedule"),
    ("ledger/rows.py", "hardening", "test_ledger test_ledger_rows"),
]
"""One line per module: its path under ``src/offload``, who owns it, and its tests.

List in-process tests: a test that runs ``offload`` in a subprocess imports the unmutated code
(and mutmut's stats run fails on it), so it can neither kill a mutant nor be listed here."""

KILLED = {"killed", "timeout"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="run only modules whose path contains one of these")
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1, help="mutmut children")
    parser.add_argument("-v", "--verbose", action="store_true", help="list surviving and excluded mutants")
    parser.add_argument("--scratch", default="work", help="scratch directory name under .mutation/")
    args = parser.parse_args(argv)
    chosen = [m for m in MODULES if not args.only or any(o in m[0] for o in args.only)]
    chosen = [m for m in chosen if (ROOT / "src/offload" / m[0]).exists()]
    if not chosen:
        print("mutation: no module of the table matches (or exists)", file=sys.stderr)
        return 2
    work = _prepare(chosen, args.scratch)
    log = work / "mutmut-run.log"
    print(f"mutation: running mutmut on {len(chosen)} module(s) in {work} (log: {log})", flush=True)
    with log.open("w") as out:
        code = subprocess.run(
            [sys.executable, "-m", "mutmut", "run", "--max-children", str(args.jobs)],
            cwd=work,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        ).returncode
    if code != 0:
        print(log.read_text(errors="replace")[-4000:], file=sys.stderr)
        print(f"mutation: mutmut run failed (exit {code}); see {log}", file=sys.stderr)
        return 1
    statuses = _results(work)
    return _report(chosen, statuses, work, verbose=args.verbose)


def _prepare(chosen: list[tuple[str, str, str]], name: str) -> Path:
    """A scratch copy of src/ and tests/ with mutmut's settings in its pyproject.toml."""
    work = SCRATCH / name
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "src", work / "src", ignore=ignore)
    shutil.copytree(ROOT / "tests", work / "tests", ignore=ignore)
    names = {f"tests/{t}.py" for _, _, ts in chosen for t in ts.split()}
    tests = sorted(t for t in names if (ROOT / t).exists())
    only = [f"src/offload/{m}" for m, _, _ in chosen]
    settings = (
        "\n[tool.mutmut]\n"
        'source_paths = ["src/"]\n'
        f"only_mutate = {only!r}\n"
        f"pytest_add_cli_args_test_selection = {tests!r}\n"
        'pytest_add_cli_args = ["-m", "not inference and not browser", "-p", "no:cacheprovider", "-q"]\n'
    ).replace("'", '"')
    (work / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text() + settings)
    return work


def _results(work: Path) -> dict[str, str]:
    out = subprocess.run(
        [sys.executable, "-m", "mutmut", "results", "--all", "true"],
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    statuses: dict[str, str] = {}
    for line in out.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep:
            statuses[name] = status
    return statuses


def _module_of(mutant: str) -> str:
    """``offload.routing.retry.x_call__mutmut_3`` → ``routing/retry.py``."""
    parts: list[str] = []
    for part in mutant.split("."):
        if part.startswith(("x_", "xǁ")):
            break
        parts.append(part)
    return "/".join(parts[1:]) + ".py"


_DIFFS = """
import json, sys
from mutmut.mutation.diff_apply import find_mutant, get_diff_for_mutant
out = {}
for name in json.load(sys.stdin):
    out[name] = get_diff_for_mutant(name, path=find_mutant(name).path)
print(json.dumps(out))
"""


def _diffs(work: Path, mutants: list[str]) -> dict[str, str]:
    """Each mutant's diff, read in one process (``mutmut show`` per mutant is slow)."""
    if not mutants:
        return {}
    done = subprocess.run(
        [sys.executable, "-c", _DIFFS],
        cwd=work,
        input=json.dumps(mutants),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        print(f"mutation: could not read the diffs ({done.stderr.strip()[-300:]})", file=sys.stderr)
        return {}
    diffs: dict[str, str] = json.loads(done.stdout)
    return diffs


def _pragmas(module: str) -> int:
    """Lines marked ``# pragma: no mutate`` (equivalent mutants, each with its reason) in a module."""
    text = (ROOT / "src/offload" / module).read_text()
    return text.count("pragma: no mutate")


def message_only(diff: str) -> bool:
    """True when a mutant changes only the text of message strings (literals with a space)."""
    removed = [ln[1:] for ln in diff.splitlines() if ln.startswith("-") and not ln.startswith("---")]
    added = [ln[1:] for ln in diff.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
    if not removed or len(removed) != len(added):
        return False
    changed = False
    for old, new in zip(removed, added, strict=True):
        a, b = _tokens(old), _tokens(new)
        if a is None or b is None or len(a) != len(b):
            return False
        for (ta, sa), (tb, sb) in zip(a, b, strict=True):
            if sa == sb:
                continue
            if ta != tokenize.STRING or tb != tokenize.STRING or " " not in sa:
                return False
            changed = True
    return changed


def _tokens(line: str) -> list[tuple[int, str]] | None:
    try:
        toks = tokenize.generate_tokens(io.StringIO(line.strip() + "\n").readline)
        return [(t.type, t.string) for t in toks if t.type not in (tokenize.NEWLINE, tokenize.ENDMARKER)]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None


def _report(
    chosen: list[tuple[str, str, str]], statuses: dict[str, str], work: Path, *, verbose: bool
) -> int:
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    listed: dict[str, list[str]] = defaultdict(list)
    survivors = [m for m, status in statuses.items() if status == "survived"]
    diffs = _diffs(work, survivors)
    for mutant, status in sorted(statuses.items()):
        module = _module_of(mutant)
        if status in KILLED:
            by_module[module]["killed"] += 1
            continue
        if status == "survived" and message_only(diffs.get(mutant, "")):
            by_module[module]["excluded"] += 1
            listed[module].append(f"excluded (message text) {mutant}")
            continue
        by_module[module][status] += 1
        listed[module].append(f"{status} {mutant}")
        if verbose and mutant in diffs:
            change = [
                ln for ln in diffs[mutant].splitlines() if ln[:1] in "+-" and ln[:3] not in ("+++", "---")
            ]
            listed[module] += [f"      {ln}" for ln in change]
    print(f"{'module':<22} {'owner':<10} {'killed':>7} {'of':>5} {'rate':>6}  message  pragma  other")
    below = 0
    for module, owner, _ in chosen:
        counts = by_module.get(module, Counter())
        excluded = counts.pop("excluded", 0)
        killed = counts["killed"]
        total = sum(counts.values())
        rate = killed / total if total else 1.0
        below += rate < TARGET
        other = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if s != "killed") or "-"
        pragmas = _pragmas(module)
        counts_text = f"{killed:>7} {total:>5} {rate:>6.0%}  {excluded:>7}  {pragmas:>6}"
        print(f"{module:<22} {owner:<10} {counts_text}  {other}")
        if verbose:
            for line in listed.get(module, []):
                print(f"    {line}")
    print(
        f"target {TARGET:.0%} killed per module; {below} module(s) below it. Details: mutmut browse in {work}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
