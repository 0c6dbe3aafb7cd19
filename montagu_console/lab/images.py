"""The lab's two images, imported from a busybox-static rootfs (no registry needed).

Containers of both images bind-mount the host's /usr, /lib, /lib64, /etc/passwd and /etc/group
read-only, so they run the host's postgres 15 and the project's barman with the host's uids.
"""

from __future__ import annotations

import io
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


def rootfs_tar() -> bytes:
    """A tar of a minimal rootfs: busybox and its applet links, plus /bin/lab-cron."""
    busybox = program("busybox")
    try:
        applets = subprocess.run(
            [busybox, "--list"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.split()
    except subprocess.SubprocessError as exc:
        raise LabError(f"build images: `{busybox} --list` failed: {exc}") from None
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, mode in DIRS.items():
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        info = tar.gettarinfo(busybox, arcname="bin/busybox")
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        with open(busybox, "rb") as data:
            tar.addfile(info, data)
        for applet in applets:
            if applet != "busybox":
                link = tarfile.TarInfo(f"bin/{applet}")
                link.type, link.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(link)
        script = CRON_LOOP.encode()
        info = tarfile.TarInfo("bin/lab-cron")
        info.mode, info.size = 0o755, len(script)
        tar.addfile(info, io.BytesIO(script))
    return buf.getvalue()


def build_images(lab: Layout) -> None:
    """(Re)build montagu-lab/barman:host (runs the cron loop) and montagu-lab/postgres:host."""
    rootfs = rootfs_tar()
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
