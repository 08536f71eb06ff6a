"""The command line: ``python -m sansloop run|info`` and the ``sansloop`` script.

Most tests run the command in a child process, as a user would; a few call
``sansloop.cli.main`` in-process to check that ``run`` leaves the interpreter
as it found it.
"""

from __future__ import annotations

import asyncio
import os
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
    assert result.stdout.splitlines() == [
        "loop: sansloop.compat.loop.EventLoop (mode=full)",
        "task: sansloop.core.tasks.Task",
        "queue: sansloop.core.queues.Queue",
        "squares: [1, 4, 9, 16, 25, 36, 49, 64, 81]",
        "timeout: the wait was cancelled after 0.01 s",
    ]
