"""Run `python -m studio ...` with one file-system step made to hang, so a test can kill it exactly there.

    python tests/kill_child.py HOOK MATCH [COUNT] -- COMMAND ARGS...

HOOK is where the process stops, forever, the COUNT-th time (1 unless given) it gets there with a path that
contains MATCH:
  write    after 64 bytes written to a file opened with os.fdopen (the temporary file of an atomic write)
  fsync    after the whole temporary file is written, before it is published
  replace  at os.replace (publishing a temporary file or folder under its real name)
  link     at os.link (publishing a new output image under its number)
It prints "PAUSED <hook> <path>" to stderr first. Nothing else in the command is changed.
"""
from __future__ import annotations

import os
import sys
import time

HOOK, MATCH = sys.argv[1], sys.argv[2]
COUNT = int(sys.argv[3]) if sys.argv[3] != "--" else 1
ARGV = sys.argv[sys.argv.index("--") + 1:]
_seen = 0


def pause_if(path) -> None:
    global _seen
    if MATCH in os.fspath(path):
        _seen += 1
        if _seen == COUNT:
            print(f"PAUSED {HOOK} {os.fspath(path)}", file=sys.stderr, flush=True)
            time.sleep(3600)


if HOOK == "replace":
    real_replace = os.replace
    os.replace = lambda src, dst, **kw: (pause_if(dst), real_replace(src, dst, **kw))[1]
elif HOOK == "link":
    real_link = os.link
    os.link = lambda src, dst, **kw: (pause_if(dst), real_link(src, dst, **kw))[1]
elif HOOK in ("fsync", "write"):
    real_fdopen, real_fsync = os.fdopen, os.fsync
    names: dict[int, str] = {}

    class Watched:
        """A file object whose writes stop after 64 bytes (hook "write") once its path matches."""

        def __init__(self, file, path):
            self._file, self._path, self._written = file, path, 0

        def write(self, data):
            if HOOK == "write" and self._written + len(data) > 64 and MATCH in self._path:
                self._file.write(data[:max(0, 64 - self._written)])
                self._file.flush()
                pause_if(self._path)
            self._written += len(data)
            return self._file.write(data)

        def __getattr__(self, name):
            return getattr(self._file, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self._file.__exit__(*exc)

    def fdopen(fd, *args, **kwargs):
        path = os.readlink(f"/proc/self/fd/{fd}")
        names[fd] = path
        return Watched(real_fdopen(fd, *args, **kwargs), path)

    def fsync(fd):
        if HOOK == "fsync":
            pause_if(names.get(fd, os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    os.fdopen, os.fsync = fdopen, fsync
else:
    raise SystemExit(f"unknown hook {HOOK!r}")

from studio.cli import main  # noqa: E402  (after the hooks: they must be in place before anything runs)
from studio.quiet import quiet_libraries  # noqa: E402

quiet_libraries()
sys.exit(main(ARGV))
