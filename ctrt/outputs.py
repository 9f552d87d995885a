"""Every file a command writes: checked before any work starts, then written so that nothing is ever half there.

Artifacts (ONNX, engines, sidecars, reports, JSON, plots) go to a temporary file beside the destination, are fsynced
and renamed over it only when complete; a failure removes the temporary file. Streamed outputs (video, MOT, JSON
lines) are handled by the sinks, which keep only complete frames.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from .errors import CtrtError

# A write that fails with one of these is the machine's doing (full disk, quota, file-size limit), wherever it happens.
DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
# A half-written file or folder: hidden, named after its destination, its writer's pid and a tag, then "partial"
# (a video keeps its suffix after it, for OpenCV to choose the container).
PARTIAL = re.compile(r"^\..+\.(?P<pid>\d+)\.[^.]+\.partial(?:\.[^.]+)?$")


def partial_prefix(dest: Path) -> str:
    """How a partial file of ``dest`` written by this process begins (``PARTIAL``)."""
    return f".{dest.name}.{os.getpid()}."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def remove_stale_partials(folder: Path) -> None:
    """Remove what ctrt writers killed mid-write (SIGKILL, power loss) left in ``folder``: the partial files and
    folders whose writer is no longer running, and the lock files nobody holds. A live writer's are left alone."""
    try:
        entries = list(folder.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(".") and entry.name.endswith(LOCK_SUFFIX):
            _remove_if_unlocked(entry)
            continue
        match = PARTIAL.match(entry.name)
        if match is None or _alive(int(match["pid"])):
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()


def _key(path: Path) -> str:
    """A path's identity for comparisons: symlinks and '..' resolved, as far as the path exists."""
    try:
        return os.path.normcase(str(path.expanduser().resolve()))
    except (RuntimeError, OSError):  # a symlink loop (Python 3.11 and 3.12 raise RuntimeError, later ones OSError)
        raise CtrtError(f"{path}: its path runs into a symbolic link loop") from None


def _nearest_existing(path: Path) -> Path:
    for candidate in path.absolute().parents:
        if candidate.exists():
            return candidate
    return Path("/")


def _missing_folders(folder: Path) -> list[Path]:
    return [p for p in [folder.absolute(), *folder.absolute().parents] if not p.exists()]


def _probe_writable(folder: Path) -> str | None:
    """Why a file cannot be created in ``folder``, or None. Permission bits are not enough: root ignores them, and
    /proc or a read-only mount refuse anyway, so create (and remove) a real file."""
    try:
        fd, name = tempfile.mkstemp(prefix=".ctrt-probe-", dir=folder)
    except OSError as exc:
        return exc.strerror or str(exc)
    os.close(fd)
    os.unlink(name)
    return None


def check_outputs(outputs: Mapping[str, Path | None], inputs: Iterable[Path | None] = ()) -> None:
    """Refuse, before any work, an output that could not be written or would destroy something.

    ``outputs`` maps how the user named each file (an option such as ``--save-video``) to its path. Each must not be
    a folder or a special file, must not be the same file as any input or as another output, must not lie inside a
    folder that is an input (a dataset, an image or calibration folder is read as a whole: a file written into it
    would be read back as data or replace some), and its folder (or the nearest existing ancestor, where folders
    will be created) must accept a new file.
    """
    given = {label: path for label, path in outputs.items() if path is not None}
    existing = [p for p in inputs if p is not None and p.exists()]
    input_keys = {_key(p): p for p in existing}
    input_folders = {_key(p).rstrip(os.sep) + os.sep: p for p in existing if p.is_dir()}
    seen: dict[str, str] = {}
    for label, path in given.items():
        key = _key(path)
        # A Python parameter name (save_video) as the label: the error says so, for the CLI to spell as its flag.
        option = label.split()[0] if label.split()[0].isidentifier() else None
        if path.is_dir():
            raise CtrtError(f"{label} {path} is a folder; give a file name inside it", option)
        if path.exists() and not path.is_file():
            raise CtrtError(f"{label} {path} is not a regular file; refusing to replace it", option)
        if key in input_keys:
            raise CtrtError(f"{label} {path} is also an input ({input_keys[key]}); refusing to overwrite it", option)
        inside = next((folder for prefix, folder in input_folders.items() if key.startswith(prefix)), None)
        if inside is not None:
            raise CtrtError(f"{label} {path} is inside the input folder {inside}; write it elsewhere", option)
        if key in seen:
            raise CtrtError(f"{seen[key]} and {label} both name {path}; give each output its own file",
                            seen[key].split()[0] if seen[key].split()[0].isidentifier() else None)
        seen[key] = label
        folder = _nearest_existing(path)
        if not folder.is_dir():
            raise CtrtError(f"{label} {path}: {folder} is a file, not a folder", option)
        reason = _probe_writable(folder)
        if reason:
            raise CtrtError(f"{label} {path}: cannot create files in {folder} ({reason})", option)


LOCK_SUFFIX = ".ctrt-lock"


def lock_path(path: Path) -> Path:
    """The hidden file whose advisory lock says a ctrt process is writing ``path``."""
    return path.with_name(f".{path.name}{LOCK_SUFFIX}")


def _remove_if_unlocked(lock: Path) -> None:
    """A lock file left by a writer that is gone: taken, then removed while held (as ``release`` removes its own),
    so a process that opened it meanwhile finds it gone and takes a new one."""
    try:
        fd = os.open(lock, os.O_RDWR)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.unlink()
    except OSError:  # held: its writer is running
        pass
    finally:
        os.close(fd)


class OutputLocks:
    """Advisory locks (``flock``) on streamed outputs, held for a run: a second ctrt process naming one of them is
    refused at its start, so two runs never interleave lines in one file. A lock ends with its process, however
    that ends (a SIGKILL too); ``release`` removes the lock files."""

    def __init__(self, outputs: Mapping[str, Path]) -> None:
        self._held: list[tuple[Path, int]] = []
        self._made = [folder for path in outputs.values() for folder in _missing_folders(path.parent)]
        try:
            for label, path in outputs.items():
                self._take(label, path)
        except BaseException:
            self.release()
            raise

    def _take(self, label: str, path: Path) -> None:
        lock = lock_path(path)
        option = label.split()[0] if label.split()[0].isidentifier() else None
        try:
            self._lock(label, path, lock, option)
        except OSError as exc:  # a full disk or a folder that refuses the lock file: released by the caller
            raise CtrtError(f"{label} {path}: cannot take its lock file {lock.name}: {os_reason(exc)}",
                            option) from None

    def _lock(self, label: str, path: Path, lock: Path, option: str | None) -> None:
        lock.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise CtrtError(f"{label} {path} is being written by another ctrt process (pid {owner}); give "
                                "another file or wait for it to finish", option) from None
            # The holder before us may have removed the file between our open and our lock: lock the one on disk.
            try:
                same = os.stat(lock).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._held.append((lock, fd))  # held before it is written: a failed write still removes it
                os.ftruncate(fd, 0)
                os.pwrite(fd, str(os.getpid()).encode(), 0)
                return
            os.close(fd)

    def release(self) -> None:
        for lock, fd in self._held:
            with contextlib.suppress(OSError):
                lock.unlink()  # while still locked: a process waiting on the old file retries on a new one
            os.close(fd)
        self._held = []
        for folder in sorted(set(self._made), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                folder.rmdir()  # made for the locks; a folder the run wrote into is not empty and stays
        self._made = []


def os_reason(exc: OSError) -> str:
    return "no space left on device" if exc.errno == errno.ENOSPC else exc.strerror or str(exc)


def write_error(path: Path, exc: OSError) -> CtrtError:
    """One line for an OSError met while writing ``path``."""
    return CtrtError(f"cannot write {path}: {os_reason(exc)}; nothing was written")


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_outputs(*dests: Path) -> Iterator[list[Path]]:
    """Temporary paths beside ``dests``; when the block finishes they replace the destinations in order (a model
    before its sidecar), each fsynced, so a reader never finds a sidecar without its model or a file half there.

    A full disk or a refused write inside the block becomes one ``CtrtError``; no temporary file survives.
    """
    temps: list[Path] = []
    committed: list[Path] = []
    made = [folder for dest in dests for folder in _missing_folders(dest.parent)]
    try:
        for dest in dests:
            dest.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_partials(dest.parent)
            fd, name = tempfile.mkstemp(prefix=partial_prefix(dest), suffix=".partial", dir=dest.parent)
            os.close(fd)
            temps.append(Path(name))
        yield list(temps)
        for tmp, dest in zip(temps, dests):
            with tmp.open("rb+") as fh:
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; outputs should look like any other file
            os.replace(tmp, dest)
            committed.append(dest)
            _fsync_folder(dest.parent)
    except OSError as exc:
        if len(committed) < len(dests):
            for dest in committed:
                dest.unlink(missing_ok=True)  # the set is incomplete: take back what was already renamed
        names = {str(t): d for t, d in zip(temps, dests)} | {str(d): d for d in dests}
        culprit = names.get(str(exc.filename)) or (dests[len(committed)] if len(committed) < len(dests) else dests[-1])
        if exc.errno in DISK_ERRNOS or str(exc.filename) in names or len(temps) < len(dests):
            raise write_error(culprit, exc) from None
        raise
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
        if len(committed) < len(dests):
            for folder in sorted(set(made), key=lambda p: len(p.parts), reverse=True):
                with contextlib.suppress(OSError):
                    folder.rmdir()  # folders this call created for a file that never came: gone again


@contextlib.contextmanager
def atomic_folder(dest: Path) -> Iterator[Path]:
    """A hidden folder beside ``dest`` to fill; renamed to ``dest`` when the block finishes, every file fsynced, so
    ``dest`` appears whole or not at all. ``dest`` must not exist. Folders made on the way are removed on failure."""
    made = _missing_folders(dest.parent)
    staging: Path | None = None
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(dest.parent)
        staging = Path(tempfile.mkdtemp(prefix=partial_prefix(dest), suffix=".partial", dir=dest.parent))
        yield staging
        for path in staging.rglob("*"):
            if path.is_file():
                with path.open("rb") as fh:
                    os.fsync(fh.fileno())
        staging.chmod(0o777 & ~_umask())  # mkdtemp makes it private; a server in a container runs as another user
        staging.rename(dest)
        _fsync_folder(dest.parent)
    except OSError as exc:
        raise write_error(dest, exc) from None
    finally:
        if staging is not None and staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
        if not dest.exists():
            for folder in sorted(made, key=lambda p: len(p.parts), reverse=True):
                with contextlib.suppress(OSError):
                    folder.rmdir()


@contextlib.contextmanager
def atomic_output(dest: Path) -> Iterator[Path]:
    """One file written through a temporary path (see ``atomic_outputs``)."""
    with atomic_outputs(dest) as (tmp,):
        yield tmp


def write_text_atomic(dest: Path, text: str) -> None:
    with atomic_output(dest) as tmp:
        tmp.write_text(text)
