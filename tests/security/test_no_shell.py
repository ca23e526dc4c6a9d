"""No shell command is built from input: every module under src/epa, read with ``ast``.

Refused anywhere (a finding names file:line): os.system and os.popen (a shell), the os.exec*/os.spawn*/
os.posix_spawn* family (EPA has no use for it), subprocess.getoutput/getstatusoutput (a shell), shell= with
anything but False on any call, asyncio.create_subprocess_shell and loop.subprocess_shell, a process
started with a command that is a string (a literal, an f-string, a ``+``/``%``/``.format``/``.join``
string, or a name assigned one) rather than an argument list, an argument list that runs ``sh -c``, and
eval/exec. Every place that starts a process at all is listed in ALLOWED_PROCESS_STARTS, so that a new one
needs a reviewer's look; the self-checks at the end show that the checker flags what it should."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "src" / "epa"

# (module, enclosing function, what it calls): where EPA starts a process, each with an argument list.
ALLOWED_PROCESS_STARTS = sorted(
    [
        ("src/epa/cli/demo.py", "Children.start", "subprocess.Popen"),  # serve and agents of `epa demo`
        ("src/epa/agent/hypervisor.py", "probe_kvm", "subprocess.run"),  # the emulator libvirt named, on KVM
    ]
)

# Calls that start a process from an argument list (the first argument, or ``args=``, is the command).
ARGV_STARTS = {
    "subprocess.Popen",
    "subprocess.run",
    "subprocess.call",
    "subprocess.check_call",
    "subprocess.check_output",
    "pty.spawn",
}
# Calls that start a program with its arguments given one by one (no command string to check).
PROGRAM_STARTS = {"asyncio.create_subprocess_exec"}
PROGRAM_START_METHODS = {"subprocess_exec"}  # asyncio's loop.subprocess_exec(protocol, program, *args)
# Calls that always go through a shell.
SHELL_CALLS = {
    "os.system",
    "os.popen",
    "subprocess.getoutput",
    "subprocess.getstatusoutput",
    "asyncio.create_subprocess_shell",
}
SHELL_METHODS = {"subprocess_shell"}  # asyncio's loop.subprocess_shell(protocol, cmd)
EXEC_FAMILY = ("os.exec", "os.spawn", "os.posix_spawn")
SHELLS = {"sh", "bash", "dash", "zsh", "ksh", "csh", "tcsh", "fish", "ash", "busybox"}
# String methods whose result is a string: a command built with them is a string command.
STRING_METHODS = {"format", "join", "replace", "strip", "lstrip", "rstrip", "lower", "upper", "format_map"}


@dataclass
class Module:
    """What the checker learned about one module."""

    path: str
    findings: list[str] = field(default_factory=list)
    process_starts: list[tuple[str, str, str]] = field(default_factory=list)


def check_source(source: str, path: str) -> Module:
    tree = ast.parse(source, filename=path)
    checker = _Checker(path, _imported_names(tree))
    checker.visit(tree)
    return checker.module


def _imported_names(tree: ast.Module) -> dict[str, str]:
    """Local name -> what it stands for: ``sp`` -> ``subprocess``, ``run`` -> ``subprocess.run``."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:  # ``import a.b`` binds ``a``
                    top = alias.name.split(".")[0]
                    names[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _canonical(qualified: str) -> str:
    # asyncio.subprocess.create_subprocess_shell is asyncio.create_subprocess_shell.
    return qualified.replace("asyncio.subprocess.", "asyncio.")


class _Checker(ast.NodeVisitor):
    def __init__(self, path: str, imported: dict[str, str]) -> None:
        self.module = Module(path)
        self.imported = imported
        self.scope: list[str] = []
        # Names bound to a string in the enclosing functions (module level first).
        self.string_names: list[set[str]] = []

    # -- scopes ---------------------------------------------------------------------------------------

    def visit_Module(self, node: ast.Module) -> None:
        self.string_names.append(_string_names(node.body, set()))
        self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        params = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
        typed_str = {a.arg for a in params if a.annotation is not None and _is_str_annotation(a.annotation)}
        self.scope.append(node.name)
        self.string_names.append(_string_names(node.body, typed_str))
        self.generic_visit(node)
        self.string_names.pop()
        self.scope.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    # -- calls ----------------------------------------------------------------------------------------

    def visit_Call(self, node: ast.Call) -> None:
        callee = self._resolve(node.func)
        method = node.func.attr if isinstance(node.func, ast.Attribute) else None
        where = f"{self.module.path}:{node.lineno}"

        def flag(problem: str) -> None:
            self.module.findings.append(f"{where}: {callee or method}(...): {problem}")

        if callee in {"eval", "exec"}:
            flag("evaluates a string as code")
        if callee in SHELL_CALLS or method in SHELL_METHODS:
            flag("runs its command through a shell")
        exec_family = callee is not None and callee.startswith(EXEC_FAMILY)
        if exec_family:
            flag("the exec/spawn family is not used by EPA: start processes with subprocess and an argument list")
        for keyword in node.keywords:
            if keyword.arg == "shell" and not (
                isinstance(keyword.value, ast.Constant) and keyword.value.value is False
            ):
                flag("shell= must be False (or absent): the command would go through a shell")

        starts = callee in ARGV_STARTS or callee in PROGRAM_STARTS or method in PROGRAM_START_METHODS
        if starts:
            self.module.process_starts.append((self.module.path, ".".join(self.scope), callee or f".{method}"))
        if callee in ARGV_STARTS:
            command = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "args"), None)
            if command is not None and self._is_string(command):
                flag("the command is a string; pass an argument list")
        if (starts or exec_family) and _runs_shell_dash_c(node):
            flag("runs a shell with -c: the command would be a string again")
        self.generic_visit(node)

    def _resolve(self, func: ast.expr) -> str | None:
        """The qualified name a call goes to, through the module's imports; None when unknown."""
        attributes: list[str] = []
        while isinstance(func, ast.Attribute):
            attributes.append(func.attr)
            func = func.value
        if not isinstance(func, ast.Name):
            return None
        base = self.imported.get(func.id)
        if base is None:
            # Only builtins may be called by a bare name that no import bound.
            return func.id if not attributes else None
        return _canonical(".".join([base, *reversed(attributes)]))

    def _is_string(self, node: ast.expr) -> bool:
        return _is_string(node, set().union(*self.string_names))


def _is_string(node: ast.expr, string_names: set[str]) -> bool:
    """Whether ``node`` evaluates to a string, as far as its shape tells (lists and unknowns do not)."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str | bytes)
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _is_string(node.left, string_names) or _is_string(node.right, string_names)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        return _is_string(node.left, string_names)
    if isinstance(node, ast.IfExp):
        return _is_string(node.body, string_names) or _is_string(node.orelse, string_names)
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Name) and node.func.id == "str":
            return True
        if isinstance(node.func, ast.Attribute) and node.func.attr in STRING_METHODS:
            return True
    if isinstance(node, ast.Name):
        return node.id in string_names
    return False


def _string_names(body: list[ast.stmt], known: set[str]) -> set[str]:
    """Names this block of code binds to a string (an assignment, or a ``str`` parameter in ``known``)."""
    names = set(known)
    assignments: list[tuple[ast.expr, ast.expr]] = []
    for statement in body:
        for node in _walk_without_nested_defs(statement):
            if isinstance(node, ast.Assign):
                assignments.extend((target, node.value) for target in node.targets)
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                if _is_str_annotation(node.annotation) and isinstance(node.target, ast.Name):
                    names.add(node.target.id)
                assignments.append((node.target, node.value))
            elif isinstance(node, ast.AugAssign):
                assignments.append((node.target, node.value))
    for _ in range(3):  # ``a = "x"; b = a + y``: a few rounds reach the chains that matter
        for target, value in assignments:
            if isinstance(target, ast.Name) and _is_string(value, names):
                names.add(target.id)
    return names


def _walk_without_nested_defs(node: ast.AST) -> Iterator[ast.AST]:
    yield node
    for child in ast.iter_child_nodes(node):
        if not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            yield from _walk_without_nested_defs(child)


def _is_str_annotation(annotation: ast.expr) -> bool:
    text = ast.unparse(annotation)
    return text in {"str", "'str'", "bytes", "str | None", "Optional[str]"}


def _runs_shell_dash_c(node: ast.Call) -> bool:
    """A command whose program is a shell given ``-c``: ``["sh", "-c", ...]``, or ``"bash", "-lc", ...``
    given one by one (``os.execlp``, ``create_subprocess_exec``)."""
    candidates = [a.elts for a in node.args if isinstance(a, ast.List | ast.Tuple)] + [node.args]
    for elements in candidates:
        words = [e.value for e in elements if isinstance(e, ast.Constant) and isinstance(e.value, str)]
        if words and Path(words[0]).name in SHELLS and any(_is_dash_c(w) for w in words[1:]):
            return True
    return False


def _is_dash_c(word: str) -> bool:
    return word.startswith("-") and not word.startswith("--") and "c" in word


def scan(package: Path, root: Path) -> list[Module]:
    """Every module under ``package``, named by its path from ``root``."""
    return [
        check_source(path.read_text(encoding="utf-8"), path.relative_to(root).as_posix())
        for path in sorted(package.rglob("*.py"))
    ]


@pytest.fixture(scope="module")
def modules() -> list[Module]:
    found = scan(PACKAGE, REPO)
    assert len(found) > 50, f"only {len(found)} modules under {PACKAGE}: is this the source tree?"
    return found


def test_no_module_builds_a_shell_command_or_evaluates_code(modules: list[Module]) -> None:
    findings = [f for m in modules for f in m.findings]
    assert not findings, "\n".join(findings)


def test_every_place_that_starts_a_process_is_on_the_allow_list(modules: list[Module]) -> None:
    starts = sorted(s for m in modules for s in m.process_starts)
    assert starts == ALLOWED_PROCESS_STARTS, (
        "the places that start processes changed: review the new ones (argument lists, no shell, no input "
        f"in the program name) and update ALLOWED_PROCESS_STARTS\n  found:   {starts}\n  allowed: "
        f"{ALLOWED_PROCESS_STARTS}"
    )


# -- the checker checked ---------------------------------------------------------------------------------

BAD = [
    ('import subprocess\nsubprocess.run(f"ls {x}", shell=True)', ["shell=", "command is a string"]),
    ("import os\nos.system(cmd)", ["through a shell"]),
    ('import subprocess\nsubprocess.Popen("a " + b)', ["command is a string"]),
    ('import subprocess\nsubprocess.check_output("ls -l")', ["command is a string"]),
    ('import subprocess\nsubprocess.call("rm %s" % path)', ["command is a string"]),
    ('import subprocess\nsubprocess.run("ls {}".format(x))', ["command is a string"]),
    ('import subprocess\nsubprocess.run(" ".join(words))', ["command is a string"]),
    ('import subprocess\ncmd = "ls " + x\nsubprocess.run(cmd, check=True)', ["command is a string"]),
    ("import subprocess\ndef f(cmd: str) -> None:\n    subprocess.run(cmd)", ["command is a string"]),
    ('import subprocess as sp\nsp.Popen(args="ls " + x)', ["command is a string"]),
    ('from subprocess import run as r\nr(["ls"], shell=True)', ["shell="]),
    ('import subprocess\nsubprocess.run(["ls"], shell=flag)', ["shell="]),
    ('import subprocess\nsubprocess.run(["sh", "-c", f"ls {x}"])', ["-c"]),
    ('import subprocess\nsubprocess.run(["/bin/bash", "-lc", cmd])', ["-c"]),
    ('import subprocess\nsubprocess.getoutput("ls")', ["through a shell"]),
    ("import asyncio\nasyncio.create_subprocess_shell(cmd)", ["through a shell"]),
    ("from asyncio import create_subprocess_shell\ncreate_subprocess_shell(cmd)", ["through a shell"]),
    ("import asyncio.subprocess\nasyncio.subprocess.create_subprocess_shell(cmd)", ["through a shell"]),
    ("async def f(loop):\n    await loop.subprocess_shell(P, cmd)", ["through a shell"]),
    ('import os\nos.popen("ls")', ["through a shell"]),
    ("from os import system\nsystem(cmd)", ["through a shell"]),
    ('import os\nos.execv("/bin/sh", ["sh", "-c", cmd])', ["exec/spawn family", "-c"]),
    ('import os\nos.spawnlp(os.P_WAIT, "ls", "ls", x)', ["exec/spawn family"]),
    ('import os\nos.posix_spawn("/bin/ls", ["ls"], {})', ["exec/spawn family"]),
    ("eval(expression)", ["evaluates a string"]),
    ("exec(code, {})", ["evaluates a string"]),
    ("import asyncio\nasyncio.create_subprocess_exec('sh', '-c', cmd)", ["-c"]),
]

GOOD = [
    ('import subprocess\nsubprocess.run(["ls", x])', 1),
    ('import subprocess\nsubprocess.run(("ls", x), check=True, shell=False)', 1),
    ("import subprocess\ndef f(args: list[str]) -> None:\n    subprocess.Popen(args, stdin=subprocess.DEVNULL)", 1),
    ('import subprocess\ncmd = ["ls", "-l"]\nsubprocess.check_output(cmd + [x])', 1),
    ('import asyncio\nasyncio.create_subprocess_exec("ls", x)', 1),
    ('import subprocess\nsubprocess.run(["grep", "-c", "sh", path])', 1),
    ("import ast\nmodel.eval()\nast.literal_eval(s)\nre.compile(p)", 0),
    ("import subprocess\nraise subprocess.TimeoutExpired(cmd, 1)", 0),
]


@pytest.mark.parametrize(("source", "problems"), BAD, ids=[b[0].splitlines()[-1][:50] for b in BAD])
def test_the_checker_flags_a_known_bad_snippet(source: str, problems: list[str]) -> None:
    module = check_source(source, "snippet.py")
    assert module.findings, f"nothing flagged in:\n{source}"
    for problem in problems:
        assert any(problem in f for f in module.findings), f"{problem!r} not among {module.findings}"
    assert all(f.startswith("snippet.py:") for f in module.findings), module.findings


@pytest.mark.parametrize(("source", "starts"), GOOD, ids=[g[0].splitlines()[-1][:50] for g in GOOD])
def test_the_checker_accepts_an_argument_list_and_records_the_start(source: str, starts: int) -> None:
    module = check_source(source, "snippet.py")
    assert module.findings == []
    assert len(module.process_starts) == starts, module.process_starts
