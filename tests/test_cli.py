"""The command line: ``python -m sansloop run|info`` and the ``sansloop`` script.

Most tests run the command in a child process, as a user would; a few call
``sansloop.cli.main`` in-process to check that ``run`` leaves the interpreter
as it found it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import sansloop
from sansloop.cli import main

ROOT = Path(__file__).resolve().parent.parent
HELLO = ROOT / "examples" / "hello.py"

#: A script that reports, as key=value lines, what it ran on.
PROBE = textwrap.dedent(
    """\
    import asyncio
    import sys

    async def main():
        loop = asyncio.get_running_loop()
        print("name=" + __name__)
        print("argv=" + repr(sys.argv[1:]))
        print("loop=" + type(loop).__module__ + "." + type(loop).__qualname__)
        print("backend=" + getattr(getattr(loop, "backend", None), "name", "-"))
        print("debug=" + str(loop.get_debug()))
        print("task=" + type(asyncio.current_task()).__module__)
        return 0

    asyncio.run(main())
    loop = asyncio.new_event_loop()
    try:
        print("new_event_loop=" + type(loop).__module__)
    finally:
        loop.close()
    """
)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("PYTHONASYNCIODEBUG", "PYTHONDEVMODE", "PYTHONWARNINGS"):
        env.pop(name, None)
    return env


def sansloop_cmd(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sansloop", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=cwd,
        env=_env(),
        stdin=subprocess.DEVNULL,
    )


def _report(stdout: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)


@pytest.fixture
def probe(tmp_path: Path) -> Path:
    path = tmp_path / "probe.py"
    path.write_text(PROBE, encoding="utf-8")
    return path


# -- help and info ---------------------------------------------------------------


def _in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of main(args) run in this process."""
    try:
        status = main(list(args))
    except SystemExit as exit_:
        status = exit_.code if isinstance(exit_.code, int) else 1
    out, err = capsys.readouterr()
    return status, out, err


def test_python_dash_m_help() -> None:
    result = sansloop_cmd("--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: sansloop ")


@pytest.mark.parametrize("words", [[], ["run"], ["info"]], ids=["top", "run", "info"])
def test_help(capsys: pytest.CaptureFixture[str], words: list[str]) -> None:
    status, out, _ = _in_process(capsys, *words, "--help")
    assert status == 0
    assert out.startswith(f"usage: sansloop {' '.join(words)}".rstrip())
    if not words:
        assert "run" in out and "info" in out
    if words == ["run"]:
        assert "--backend NAME" in out and "--debug" in out


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = _in_process(capsys)
    assert status == 2
    assert "usage: sansloop" in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _in_process(capsys, "--version")
    assert status == 0
    assert out.strip() == f"sansloop {sansloop.__version__}"


def test_info() -> None:
    result = sansloop_cmd("info")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"sansloop {sansloop.__version__}"
    info = dict(line.split(": ", 1) for line in lines[1:])
    available = info["available backends"].split(", ")
    assert info["default backend"] == available[0]
    if sys.platform == "linux":
        assert available[0] == "epoll"
        assert "poll" in available
    assert info["python"].endswith(".".join(map(str, sys.version_info[:3])))


def test_info_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info"]) == 0
    assert capsys.readouterr().out.startswith(f"sansloop {sansloop.__version__}\n")


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).with_name("sansloop")
    assert script.exists(), f"pip install -e . should have made {script}"
    result = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, timeout=30, env=_env()
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"sansloop {sansloop.__version__}"


# -- run -------------------------------------------------------------------------


def test_run_uses_sansloop_for_asyncio_run_and_new_event_loop(probe: Path) -> None:
    result = sansloop_cmd("run", probe, "one", "--two", "-3")
    assert result.returncode == 0, result.stderr
    report = _report(result.stdout)
    assert report == {
        "name": "__main__",
        "argv": "['one', '--two', '-3']",
        "loop": "sansloop.compat.loop.EventLoop",
        "backend": sansloop.available_backends()[0],
        "debug": "False",
        "task": "_asyncio",  # loop mode: stdlib tasks on our loop
        "new_event_loop": "sansloop.compat.loop",
    }


def test_run_with_backend_and_debug(probe: Path) -> None:
    result = sansloop_cmd("run", "--backend", "poll", "--debug", probe)
    assert result.returncode == 0, result.stderr
    report = _report(result.stdout)
    assert report["backend"] == "poll"
    assert report["debug"] == "True"
    assert report["argv"] == "[]"


def test_run_script_directory_is_importable(tmp_path: Path) -> None:
    (tmp_path / "helper_mod_for_cli.py").write_text("VALUE = 42\n", encoding="utf-8")
    script = tmp_path / "main.py"
    script.write_text("import helper_mod_for_cli\nprint(helper_mod_for_cli.VALUE)\n")
    result = sansloop_cmd("run", script, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "42\n"


def test_run_unknown_backend_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], probe: Path
) -> None:
    status, out, err = _in_process(capsys, "run", "--backend", "carrier-pigeon", str(probe))
    assert status == 2
    assert "backend 'carrier-pigeon' cannot be used here" in err
    assert out == ""


def test_run_missing_script(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err = _in_process(capsys, "run", str(tmp_path / "absent.py"))
    assert status == 2
    assert "can't open file" in err and "absent.py" in err


def test_run_passes_the_scripts_exit_status(tmp_path: Path) -> None:
    script = tmp_path / "exits.py"
    script.write_text(
        "import asyncio, sys\n"
        "async def main():\n"
        "    await asyncio.sleep(0)\n"
        "    return type(asyncio.get_running_loop()).__name__ == 'EventLoop' and 3\n"
        "sys.exit(asyncio.run(main()))\n"
    )
    policy = asyncio.get_event_loop_policy()
    with pytest.raises(SystemExit) as exited:
        main(["run", str(script)])
    assert exited.value.code == 3
    assert asyncio.get_event_loop_policy() is policy


def test_run_lets_the_scripts_exception_through(tmp_path: Path) -> None:
    script = tmp_path / "fails.py"
    script.write_text(
        "import asyncio\n"
        "async def main():\n"
        "    raise LookupError('the needle')\n"
        "asyncio.run(main())\n"
    )
    policy = asyncio.get_event_loop_policy()
    argv = sys.argv[:]
    with pytest.raises(LookupError, match="the needle"):
        main(["run", str(script)])
    assert asyncio.get_event_loop_policy() is policy
    assert sys.argv == argv


def test_run_hello_example_matches_stdlib() -> None:
    on_sansloop = sansloop_cmd("run", HELLO)
    assert on_sansloop.returncode == 0, on_sansloop.stderr
    on_stdlib = subprocess.run(
        [sys.executable, str(HELLO)], capture_output=True, text=True, timeout=30, env=_env()
    )
    assert on_stdlib.returncode == 0, on_stdlib.stderr

    def stable(out: str) -> list[str]:
        return [ln for ln in out.splitlines() if not ln.startswith(("event loop:", "done in"))]

    assert on_sansloop.stdout.splitlines()[0] == "event loop: sansloop.compat.loop.EventLoop"
    assert "4 words hashed by 3 consumers" in on_sansloop.stdout
    assert "slow step cancelled after 0.05 s timeout" in on_sansloop.stdout
    assert stable(on_sansloop.stdout) == stable(on_stdlib.stdout)


def test_run_in_process_restores_the_interpreter(probe: Path) -> None:
    policy = asyncio.get_event_loop_policy()
    argv = sys.argv[:]
    path = sys.path[:]
    assert main(["run", str(probe), "x"]) == 0
    assert asyncio.get_event_loop_policy() is policy
    assert sys.argv == argv
    assert sys.path == path


def test_full_mode_example() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "full_mode.py")],
        capture_output=True,
        text=True,
        timeout=30,
        env=_env(),
    )
    assert result.returncode == 0, result.stderr
    loop_line, *rest = result.stdout.splitlines()
    # sansloop.compat.new_event_loop() makes a SelectorEventLoop, as asyncio names it
    assert loop_line.startswith("loop: sansloop.compat.") and loop_line.endswith(" (mode=full)")
    assert rest == [
        "task: sansloop.core.tasks.Task",
        "queue: sansloop.core.queues.Queue",
        "squares: [1, 4, 9, 16, 25, 36, 49, 64, 81]",
        "timeout: the wait was cancelled after 0.01 s",
    ]


# -- help of every subcommand ---------------------------------------------------


@pytest.mark.parametrize("command", ["repl", "bench", "replay"])
def test_help_of_the_other_commands(capsys: pytest.CaptureFixture[str], command: str) -> None:
    status, out, _ = _in_process(capsys, command, "--help")
    assert status == 0
    assert out.startswith(f"usage: sansloop {command}")
    top_status, top, _ = _in_process(capsys, "--help")
    assert top_status == 0 and f"    {command} " in top
    expected = {
        "repl": ["--backend NAME", "--debug", "--mode {loop,full}", "await"],
        "bench": ["--full", "--rounds N", "--only NAME", "uvloop", "asyncio"],
        "replay": ["TOKEN", "TARGET", "replay token", "file.py:func"],
    }[command]
    for text in expected:
        assert text in out, text


# -- repl ------------------------------------------------------------------------


def repl(stdin: str, *options: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run ``python -m sansloop repl`` with *stdin* as what the user types."""
    return subprocess.run(
        [sys.executable, "-m", "sansloop", "repl", *options],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=_env(),
    )


def _outputs(stdout: str) -> list[str]:
    """What the statements printed, prompts removed (input() writes them to stdout)."""
    lines = []
    for line in stdout.splitlines():
        while line.startswith((">>> ", "... ")):
            line = line[4:]
        if line not in (">>>", "..."):
            lines.append(line)
    return [line for line in lines if line]


def test_repl_top_level_await_runs_on_sansloop() -> None:
    result = repl(
        "await asyncio.sleep(0.01, result=6 * 7)\n"
        "loop = asyncio.get_running_loop()\n"
        "print(type(loop).__module__, type(loop).__name__, loop.backend.name)\n"
        "await asyncio.sleep(0); print(type(asyncio.current_task()).__module__)\n"
        "t = asyncio.create_task(asyncio.sleep(0, result='from a task'))\n"
        "await t\n"
        "async def twice(x):\n"
        "    await asyncio.sleep(0)\n"
        "    return 2 * x\n"
        "\n"
        "await asyncio.gather(twice(1), twice(2))\n"
    )
    assert result.returncode == 0, result.stderr
    assert _outputs(result.stdout) == [
        "42",
        f"sansloop.compat.loop EventLoop {sansloop.available_backends()[0]}",
        "_asyncio",
        "'from a task'",
        "[2, 4]",
    ]
    assert "sansloop" in result.stderr and 'Use "await" directly' in result.stderr
    assert result.stderr.rstrip().endswith("exiting sansloop REPL...")


def test_repl_loop_keeps_running_between_statements() -> None:
    # A task started by one statement makes progress while the next ones run.
    result = repl(
        "seen = []\n"
        "async def ticker():\n"
        "    for i in range(3):\n"
        "        seen.append(i)\n"
        "        await asyncio.sleep(0)\n"
        "\n"
        "task = asyncio.create_task(ticker())\n"
        "await asyncio.sleep(0.01)\n"
        "print(seen, task.done())\n"
    )
    assert result.returncode == 0, result.stderr
    assert _outputs(result.stdout) == ["[0, 1, 2] True"]


def test_repl_shows_errors_and_goes_on() -> None:
    result = repl(
        "1 / 0\n"
        "async def fails():\n"
        "    raise LookupError('the needle')\n"
        "\n"
        "await fails()\n"
        "print('still here')\n"
    )
    assert result.returncode == 0, result.stderr
    assert _outputs(result.stdout) == ["still here"]
    assert "ZeroDivisionError: division by zero" in result.stderr
    assert "LookupError: the needle" in result.stderr
    # Only the user's frames: nothing of the console machinery.
    tracebacks = result.stderr.split("Traceback (most recent call last):")[1:]
    assert len(tracebacks) == 2
    for tb in tracebacks:
        files = [ln for ln in tb.splitlines() if ln.strip().startswith("File ")]
        assert files and all('"<console>"' in ln for ln in files), tb


def test_repl_full_mode_backend_and_debug() -> None:
    result = repl(
        "loop = asyncio.get_running_loop()\n"
        "print(asyncio.__name__, loop.backend.name, loop.get_debug())\n"
        "print(type(asyncio.ensure_future(asyncio.sleep(0))).__module__)\n",
        "--mode",
        "full",
        "--backend",
        "poll",
        "--debug",
    )
    assert result.returncode == 0, result.stderr
    assert _outputs(result.stdout) == ["sansloop.compat poll True", "sansloop.core.tasks"]


def test_repl_exit_status_and_cleanup() -> None:
    result = repl(
        "import atexit\n"
        "async def forever():\n"
        "    try:\n"
        "        await asyncio.sleep(3600)\n"
        "    finally:\n"
        "        print('cancelled on exit', flush=True)\n"
        "\n"
        "task = asyncio.create_task(forever())\n"
        "await asyncio.sleep(0)\n"
        "raise SystemExit(3)\n"
        "print('not reached')\n"
    )
    assert result.returncode == 3, result.stderr
    assert _outputs(result.stdout) == ["cancelled on exit"]


def test_repl_unknown_backend_is_a_usage_error() -> None:
    result = repl("", "--backend", "carrier-pigeon")
    assert result.returncode == 2
    assert "backend 'carrier-pigeon' cannot be used here" in result.stderr


def test_repl_ctrl_c_ends_the_running_statement_only() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sansloop", "repl"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=_env(),
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("print('waiting', flush=True); await asyncio.sleep(60)\n")
        proc.stdin.write("print('after', flush=True)\n")
        proc.stdin.flush()
        assert proc.stdout.readline().endswith("waiting\n")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert _outputs(out) == ["after"]
    assert "KeyboardInterrupt" in err


# -- bench and replay -----------------------------------------------------------


def test_bench_prints_a_comparison_table() -> None:
    result = sansloop_cmd("bench", "--only", "call_soon")
    assert result.returncode == 0, result.stderr
    rows = [
        ln.split("|")[1:-1] for ln in result.stdout.splitlines() if ln.startswith("| call_soon")
    ]
    impls = [row[1].strip() for row in rows]
    assert impls[:3] == ["asyncio", "sansloop-loop", "sansloop-full"]
    for row in rows:
        assert float(row[2].replace(",", "")) > 0  # ops/s of a run that completed
    assert rows[0][3].strip().startswith("1.00x")  # asyncio is the baseline
    assert "vs asyncio" in result.stdout


def test_bench_unknown_benchmark_fails() -> None:
    result = sansloop_cmd("bench", "--only", "no-such-benchmark")
    assert result.returncode == 2
    assert "unknown benchmark" in result.stderr


SIM_PROGRAM = textwrap.dedent(
    """\
    import asyncio

    async def fine():
        await asyncio.sleep(1.5)
        return "fine"

    async def fails():
        await asyncio.sleep(2)
        raise LookupError("the needle")
    """
)


@pytest.fixture
def sim_program(tmp_path: Path) -> Path:
    path = tmp_path / "simprog.py"
    path.write_text(SIM_PROGRAM, encoding="utf-8")
    return path


def _sim_tokens(sim_program: Path) -> tuple[str, str, str]:
    """Tokens of a run of fine() and of a failing run of fails(), and fine's digest."""
    import runpy

    from sansloop import sim

    program = runpy.run_path(str(sim_program))
    result = sim.run(program["fine"], seed=5)
    with pytest.raises(LookupError) as failed:
        sim.run(program["fails"], seed=9)
    notes = " ".join(getattr(failed.value, "__notes__", []))
    token = notes.split("replay token: ", 1)[1].split()[0]
    return result.token, token, result.digest


def test_replay_reruns_a_simulated_run(sim_program: Path) -> None:
    ok_token, failing_token, digest = _sim_tokens(sim_program)

    replayed = sansloop_cmd("replay", ok_token, f"{sim_program}:fine")
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.splitlines() == [
        "replayed: 'fine'",
        "virtual time: 1.500000 s",
        f"trace digest: {digest}",
    ]

    failure = sansloop_cmd("replay", failing_token, f"{sim_program}:fails")
    assert failure.returncode == 1
    assert "LookupError: the needle" in failure.stderr
    assert f"replayed from {failing_token}" in failure.stderr
    assert failure.stderr.rstrip().endswith("sansloop replay: the replayed run raised (above)")


@pytest.mark.parametrize(
    "token, target, message",
    [
        ("not-a-token", "{prog}:fine", "not a sansloop.sim replay token"),
        (None, "{prog}", "TARGET must be path/to/file.py:func or module:func"),
        (None, "{prog}.missing.py:fine", "no such file"),
        (None, "{prog}:absent", "has no 'absent'"),
    ],
)
def test_replay_bad_token_or_target(
    sim_program: Path, token: str | None, target: str, message: str
) -> None:
    from sansloop import sim

    if token is None:
        token = sim.run(lambda: asyncio.sleep(0), seed=1).token
    result = sansloop_cmd("replay", token, target.format(prog=sim_program))
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_replay_without_the_simulation(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # An installation without sansloop.sim: the command says so, status 2.
    monkeypatch.delattr(sansloop, "sim", raising=False)
    monkeypatch.setitem(sys.modules, "sansloop.sim", None)
    status, out, err = _in_process(capsys, "replay", "sim1-x", "prog.py:main")
    assert status == 2 and out == ""
    assert "simulation (sansloop.sim.replay) is not available" in err
