"""Run a built image's entry point the way Kubernetes would, on a machine without a container engine.

`podman run` cannot work here (no cgroups, no setrlimit) and `buildah run` has no read-only root. So the
image's root filesystem comes from `buildah from` + `buildah mount`, and a few lines of util-linux do what a
runtime does: a private mount and PID namespace (the service is PID 1 and receives SIGTERM as in a pod),
the root bind-mounted read-only, /proc, /dev, a tmpfs at /tmp (the pod's emptyDir) and the state directory
(the pod's volume) mounted on it, then chroot as the image's user with the image's environment, working
directory and entry point. The network is the host's: the server is reachable on loopback.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[2]

# $1 image root, $2 mount point, $3 state directory on the host, $4 state directory in the image, $5 user:group;
# then the command (env -i ... entrypoint args).
_RUNTIME = r"""
set -eu
rootfs=$1 root=$2 state=$3 state_in=$4 user=$5
shift 5
mount --bind "$rootfs" "$root"
mount -o remount,bind,ro "$root"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o mode=1777,size=256m tmpfs "$root/tmp"
mount --bind "$state" "$root$state_in"
exec chroot --userspec="$user" "$root" "$@"
"""


def version() -> str:
    for line in (ROOT / "pyproject.toml").read_text().splitlines():
        if line.startswith("version = "):
            return line.split('"')[1]
    raise AssertionError("no version in pyproject.toml")


def image_config(image: str) -> dict[str, Any]:
    """The image's OCI configuration (User, Env, Entrypoint, Cmd, WorkingDir, ...)."""
    out = subprocess.run(
        ["buildah", "inspect", "--type", "image", image], capture_output=True, text=True, check=True
    ).stdout
    return dict(json.loads(out)["OCIv1"]["config"])


@dataclass
class Container:
    """The service of ``image`` running with a read-only root; ``stop()`` cleans up whatever happened."""

    image: str
    state: Path  # on the host; mounted at the image's working directory
    mountpoint: Path
    log: Path  # stdout and stderr of the service (a file: a pipe nobody reads would block it)
    args: list[str]
    name: str = field(default_factory=lambda: f"icos-test-{uuid.uuid4().hex[:12]}")
    proc: subprocess.Popen[str] | None = None
    _log_file: IO[str] | None = None

    def start(self) -> Container:
        config = image_config(self.image)
        subprocess.run(
            ["buildah", "from", "--pull=never", "--name", self.name, self.image], check=True, capture_output=True
        )
        rootfs = subprocess.run(
            ["buildah", "mount", self.name], capture_output=True, text=True, check=True
        ).stdout.strip()
        workdir = config.get("WorkingDir") or "/"
        command = [
            "/usr/bin/env",
            "-i",
            "-C",
            workdir,
            *config.get("Env", []),
            *config.get("Entrypoint", []),
            *(self.args or config.get("Cmd") or []),
        ]
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log.open("w")
        self.proc = subprocess.Popen(
            [
                "unshare",
                "--mount",
                "--pid",
                "--fork",
                "--kill-child",
                "sh",
                "-c",
                _RUNTIME,
                "runtime",
                rootfs,
                str(self.mountpoint),
                str(self.state),
                workdir,
                config.get("User") or "0:0",
                *command,
            ],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            text=True,
        )
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    @property
    def pid1(self) -> int:
        """The container's PID 1 as the host sees it (the child unshare forked)."""
        assert self.proc is not None
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        assert children, "the container's process has not started"
        return int(children[0])

    def status(self, key: str) -> str:
        """A field of /proc/<pid1>/status (Uid, VmHWM, ...)."""
        for line in Path(f"/proc/{self.pid1}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return line.split(":", 1)[1].strip()
        raise KeyError(key)

    def signal(self, signum: int) -> None:
        os.kill(self.pid1, signum)

    def wait(self, timeout: float = 90.0) -> int:
        """The exit code (unshare passes on PID 1's), killing everything after ``timeout``."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # --kill-child takes the container's processes with it
            self.proc.wait(timeout=30)
            raise

    def remove(self) -> None:
        """Kill what still runs, unmount and remove the working container."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        if self._log_file is not None:
            self._log_file.close()
        subprocess.run(["buildah", "umount", self.name], capture_output=True, check=False)
        subprocess.run(["buildah", "rm", self.name], capture_output=True, check=False)
