"""The lab's images, imported from busybox-static rootfs tarballs (no registry needed).

Containers of the lab's own two images bind-mount the host's /usr, /lib, /lib64, /etc/passwd and
/etc/group read-only, so they run the host's postgres 15 and the project's barman with the host's
uids. privateer's images (privateer_lab.py) carry the host programs they need with their shared
libraries instead (:func:`rootfs_tar` ``programs``), as privateer mounts nothing else.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile

from .docker_daemon import docker
from .layout import BARMAN_IMAGE, POSTGRES_IMAGE, Layout
from .proc import LabError, program

# The cron stand-in of the barman-montagu container: `barman -q cron` every BARMAN_CRON_INTERVAL
# seconds unless the pause file exists. Each run holds BARMAN_CRON_LOCK, so whoever creates the
# pause file can then take the lock to wait for a run already under way.
CRON_LOOP = """\
#!/bin/sh
trap "exit 0" TERM INT
while :; do
    flock "$BARMAN_CRON_LOCK" sh -c '[ -e "$BARMAN_CRON_PAUSE_FILE" ] || barman -q cron' || true
    sleep "${BARMAN_CRON_INTERVAL:-10}" & wait $!
done
"""

DIRS = {
    "bin": 0o755,
    "etc": 0o755,
    "tmp": 0o1777,
    "var": 0o755,
    "var/tmp": 0o1777,
    "root": 0o700,
    "usr": 0o755,
    "lib": 0o755,
    "lib64": 0o755,
    "proc": 0o755,
    "sys": 0o755,
    "dev": 0o755,
    "pgdata": 0o700,
    "nightly": 0o755,
    "recover": 0o755,
}


def _add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.mode, info.size = mode, len(data)
    tar.addfile(info, io.BytesIO(data))


def _add_host_file(tar: tarfile.TarFile, source: str, name: str) -> None:
    """``source`` (symlinks followed) as ``name``, owned by root."""
    info = tar.gettarinfo(os.path.realpath(source), arcname=name)
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    with open(os.path.realpath(source), "rb") as data:
        tar.addfile(info, data)


def shared_libraries(executable: str) -> list[str]:
    """The absolute paths ``ldd`` lists for ``executable`` (its loader included)."""
    try:
        out = subprocess.run(
            [program("ldd"), executable], capture_output=True, text=True, check=True, timeout=10
        ).stdout
    except subprocess.SubprocessError as exc:
        raise LabError(f"build images: `ldd {executable}` failed: {exc}") from None
    return [word for line in out.splitlines() for word in line.split() if word.startswith("/")]


def rootfs_tar(
    dirs: dict[str, int] = DIRS, files: dict[str, tuple[bytes, int]] | None = None, programs: tuple[str, ...] = ()
) -> bytes:
    """A tar of a minimal rootfs: ``dirs``, busybox and its applet links in /bin, ``files`` (path:
    contents, mode), and each host program in ``programs`` at its own path with the shared
    libraries it loads (then /lib and /lib64 link to usr/lib and usr/lib64, as on the host)."""
    busybox = program("busybox")
    try:
        applets = subprocess.run(
            [busybox, "--list"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.split()
    except subprocess.SubprocessError as exc:
        raise LabError(f"build images: `{busybox} --list` failed: {exc}") from None
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, mode in dirs.items():
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        _add_host_file(tar, busybox, "bin/busybox")
        for applet in applets:
            if applet != "busybox":
                link = tarfile.TarInfo(f"bin/{applet}")
                link.type, link.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(link)
        for name, (data, mode) in (files or {}).items():
            _add_file(tar, name, data, mode)
        copied: set[str] = set()
        for exe in programs:
            for path in (exe, *shared_libraries(exe)):
                # the library's own name, in its directory with symlinks resolved (/lib -> /usr/lib)
                name = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path)).lstrip("/")
                if name not in copied:
                    copied.add(name)
                    _add_host_file(tar, path, name)
        if programs:
            for top in ("lib", "lib64"):
                link = tarfile.TarInfo(top)
                link.type, link.linkname = tarfile.SYMTYPE, f"usr/{top}"
                tar.addfile(link)
    return buf.getvalue()


def lab_rootfs_tar() -> bytes:
    """The rootfs of the lab's own two images: busybox plus /bin/lab-cron."""
    return rootfs_tar(DIRS, {"bin/lab-cron": (CRON_LOOP.encode(), 0o755)})


def build_images(lab: Layout) -> None:
    """(Re)build montagu-lab/barman:host (runs the cron loop) and montagu-lab/postgres:host."""
    rootfs = lab_rootfs_tar()
    common = ["--change", "ENV LANG=C.UTF-8"]
    docker(
        lab,
        "import barman image",
        "import",
        *common,
        "--change",
        'CMD ["/bin/lab-cron"]',
        "-",
        BARMAN_IMAGE,
        input=rootfs,
    )
    docker(
        lab,
        "import postgres image",
        "import",
        *common,
        "--change",
        'CMD ["/bin/sh"]',
        "-",
        POSTGRES_IMAGE,
        input=rootfs,
    )


def host_mounts() -> list[str]:
    """``-v`` options that give a container of these images the host's programs and users."""
    args = []
    for path in ("/usr", "/lib", "/lib64", "/etc/passwd", "/etc/group"):
        args += ["-v", f"{path}:{path}:ro"]
    return args
