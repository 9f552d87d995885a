"""Every file a command writes: checked before any work starts, then written so that nothing is ever half there.

Artifacts (ONNX, engines, sidecars, reports, JSON, plots) go to a temporary file beside the destination, are fsynced
and renamed over it only when complete; a failure removes the temporary file. Streamed outputs (video, MOT, JSON
lines) are handled by the sinks, which keep only complete frames.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from .errors import CtrtError

# A write that fails with one of these is the machine's doing (full disk, quota, file-size limit), wherever it happens.
DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def _key(path: Path) -> str:
    """A path's identity for comparisons: symlinks and '..' resolved, as far as the path exists."""
    return os.path.normcase(str(path.expanduser().resolve()))


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
    a folder or a special file, must not be the same file as any input or as another output, and its folder (or the
    nearest existing ancestor, where folders will be created) must accept a new file.
    """
    given = {label: path for label, path in outputs.items() if path is not None}
    input_keys = {_key(p): p for p in inputs if p is not None and p.exists()}
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
            fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent)
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
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
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
