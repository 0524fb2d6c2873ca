"""How many threads torch gets: the CPU cores this process may really use, shared with the other leaptrain runs
training on the same machine (more threads than cores make every run many times slower, not faster)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

# The Linux kernel's own files, the same on every Linux system: a container's CPU quota (cgroup v2 and v1) and what
# each process is. Elsewhere they do not exist, and no quota and no other runs are assumed.
CGROUP = Path("/sys/fs/cgroup")
PROC = Path("/proc")

# The first word after `python -m trainer` that means the process trains itself (a config file means `train`).
TRAINING_COMMANDS = ("train", "resume", "try")
CHOOSE = "OMP_NUM_THREADS"  # the variable torch and every OpenMP program read for their number of threads


def usable_cores(cgroup: Path | None = None, membership: str | None = None) -> int:
    """CPU cores this process may use: those it may run on (affinity), fewer when a cgroup CPU quota allows less."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        cores = os.cpu_count() or 1
    quota = cpu_quota(cgroup, membership)
    if quota is not None:
        cores = min(cores, max(1, int(quota)))  # 1.5 cores of quota: one thread never waits for its time slice
    return max(1, cores)


def cpu_quota(cgroup: Path | None = None, membership: str | None = None) -> float | None:
    """Cores' worth of CPU time the cgroup quota grants (1.5 = one and a half cores); None when unlimited.

    `membership` is the text of /proc/self/cgroup (which cgroup this process is in). A quota set on any folder
    from that cgroup up to the root applies, so the smallest counts; inside a container the root is its own.
    """
    root = cgroup or CGROUP
    if membership is None:
        membership = _read(PROC / "self" / "cgroup")
    v2_path = v1_path = "/"
    for line in membership.splitlines():
        number, controllers, path = [*line.split(":", 2), "", ""][:3]
        if number == "0" and not controllers:
            v2_path = path
        elif "cpu" in controllers.split(","):
            v1_path = path
    limits = []
    for folder in _up_from(root, v2_path):  # cgroup v2: cpu.max holds "QUOTA PERIOD", or "max PERIOD"
        words = _read(folder / "cpu.max").split()
        if len(words) == 2 and words[0] != "max":
            limits.append(_ratio(words[0], words[1]))
    for base in (root / "cpu", root / "cpu,cpuacct"):  # cgroup v1: two files, the quota -1 when unlimited
        for folder in _up_from(base, v1_path):
            quota, period = _read(folder / "cpu.cfs_quota_us").strip(), _read(folder / "cpu.cfs_period_us").strip()
            if quota and period and not quota.startswith("-"):
                limits.append(_ratio(quota, period))
    limits = [limit for limit in limits if limit > 0]
    return min(limits, default=None)


def _ratio(quota: str, period: str) -> float:
    try:
        return int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        return 0.0


def _up_from(root: Path, path: str) -> list[Path]:
    """root/a/b, root/a and root for the cgroup path /a/b."""
    parts = [part for part in path.strip().split("/") if part not in ("", ".", "..")]
    return [root.joinpath(*parts[:end]) for end in range(len(parts), -1, -1)]


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return ""


def registry(folder: Path | None = None) -> Path:
    """The folder where each training run leaves a file named by its process id while it trains: in leaptrain's
    cache folder ($LEAPTRAIN_CACHE_DIR, else $XDG_CACHE_HOME/leaptrain, else ~/.cache/leaptrain)."""
    if folder is not None:
        return folder
    cache = os.environ.get("LEAPTRAIN_CACHE_DIR")
    if not cache:
        cache = str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "leaptrain")
    return Path(cache) / "training"


def register(folder: Path | None = None, proc: Path | None = None) -> Path | None:
    """Note this process in the registry; the file to remove when it stops training (None when it cannot write)."""
    folder, pid = registry(folder), os.getpid()
    entry, temporary = folder / str(pid), folder / f".{pid}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temporary.write_text(_started(pid, proc or PROC))
        os.replace(temporary, entry)  # whole or absent: a half-written file would look like a dead run's
    except OSError:  # a read-only home: this run is not seen by others, but still sees them
        return None
    return entry


def other_runs(folder: Path | None = None, proc: Path | None = None) -> set[int]:
    """Process ids of the other leaptrain runs training on this machine: those in the registry that are alive
    (the files of dead ones are removed), and `python -m trainer` commands that will train but have not begun."""
    folder, proc, me = registry(folder), proc or PROC, os.getpid()
    pids = set()
    for entry in folder.glob("[0-9]*") if folder.is_dir() else []:
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        if _alive(int(entry.name), _read(entry), proc):
            pids.add(int(entry.name))
        else:  # killed without a chance to clean up (kill -9, a crash)
            entry.unlink(missing_ok=True)
    return pids | starting_runs(proc)


def starting_runs(proc: Path | None = None) -> set[int]:
    """`python -m trainer CONFIG` (or `trainer CONFIG`) processes, so that runs started side by side see each
    other before any has reached its first step. Their DataLoader workers, forked with the same command line,
    are left out, and so is the process that started this one (torchrun's, whose workers train)."""
    proc, me = proc or PROC, os.getpid()
    parents = {}
    for folder in proc.iterdir() if proc.is_dir() else []:
        if folder.name.isdigit() and trains(_read(folder / "cmdline").split("\0")):
            parents[int(folder.name)] = _parent(_read(folder / "stat"))
    return {
        pid
        for pid, parent in parents.items()
        if pid != me and pid != os.getppid() and parent != me and parent not in parents
    }


def trains(argv: list[str]) -> bool:
    """Whether a command line is a leaptrain command that trains in its own process."""
    if len(argv) > 1 and Path(argv[1]).name == "trainer" and Path(argv[0]).name.startswith("python"):
        rest = argv[2:]  # the `trainer` console script, run by the interpreter its first line names
    elif "-m" in argv and argv[argv.index("-m") + 1 : argv.index("-m") + 2] == ["trainer"]:
        rest = argv[argv.index("-m") + 2 :]
    else:
        return False
    words = [word for word in rest if word and not word.startswith("-")]
    return bool(words) and (words[0] in TRAINING_COMMANDS or words[0].endswith((".yaml", ".yml")))


def _started(pid: int, proc: Path) -> str:
    """When a process started (clock ticks after boot), "" when there is none: tells a reused process id apart."""
    fields = _read(proc / str(pid) / "stat").rpartition(")")[2].split()  # its name, in parentheses, may hold spaces
    return fields[19] if len(fields) > 19 else ""


def _parent(stat: str) -> int:
    fields = stat.rpartition(")")[2].split()
    return int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0


def _alive(pid: int, started: str, proc: Path) -> bool:
    if proc.is_dir():
        return bool(started) and _started(pid, proc) == started
    if sys.platform == "win32":  # os.kill there ends the process: the registry is not kept on Windows
        return False
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True


def fair_share(runs: int, cores: int) -> int:
    """Threads for each of `runs` runs on `cores` cores: cores // runs, at least 1."""
    return max(1, cores // max(1, runs))


def threads_for(runs: int = 1, folder: Path | None = None, proc: Path | None = None) -> int:
    """Threads for each of `runs` runs about to start here (a sweep's --jobs workers), beside those training."""
    return fair_share(runs + len(other_runs(folder, proc)), usable_cores())


def choose_threads(others: int, cores: int, chosen: str | None) -> tuple[int, str]:
    """Threads for this run and the line that says why ("" when it is alone): its share of `cores` beside
    `others` runs, or `chosen` (OMP_NUM_THREADS) when that is a number."""
    runs = "1 other leaptrain run is" if others == 1 else f"{others} other leaptrain runs are"
    if chosen and chosen.strip().isdigit() and int(chosen) > 0:
        threads = int(chosen)
        line = f"threads: {runs} training on this machine; this one uses {threads} as {CHOOSE} says"
        return threads, line if others else ""
    threads = fair_share(others + 1, cores)
    line = (
        f"threads: {runs} training on this machine, so this one takes {threads} of the {cores} CPU cores it may "
        f"use (to choose: {CHOOSE}={cores} python -m trainer ...)"
    )
    return threads, line if others else ""


@contextlib.contextmanager
def shared_cores(
    say: Callable[[str], None] = print,
    folder: Path | None = None,
    proc: Path | None = None,
    resumed_with: int | None = None,
) -> Iterator[int]:
    """While training: this run is in the registry and torch uses its share of the cores (said when shared);
    afterwards the registry forgets it and torch's threads are what they were. A resumed run takes the threads it
    had (`resumed_with`), since another number of threads adds the numbers in another order: a resume is exact."""
    import torch

    before = torch.get_num_threads()
    entry = register(folder, proc)
    try:
        threads, line = choose_threads(len(other_runs(folder, proc)), usable_cores(), os.environ.get(CHOOSE))
        if resumed_with is not None and resumed_with != threads and not os.environ.get(CHOOSE):
            threads = resumed_with
            line = f"threads: {threads}, as the run had before, so that it carries on with the same numbers"
        if line:
            say(line)
        torch.set_num_threads(threads)
        yield threads
    finally:
        torch.set_num_threads(before)
        if entry is not None:
            entry.unlink(missing_ok=True)
