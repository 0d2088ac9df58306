"""Start and stop a real ``qbittorrent-nox`` on 127.0.0.1 for tests and benchmarks.

Recipe verified in ../shared/research/qbt.md: the conf is written before the first start (legal
notice accepted, PBKDF2 password, no ban after failed logins), every peer protocol is off and all
tracker traffic goes to a SOCKS5 "proxy" on a loopback port where nothing listens, so nothing leaves
loopback.

Two flavours: the host's Debian package (4.5.2 on Debian 12) and, when ``scripts/setup`` built it
(``MAM_GUARD_QBT5=1``), qBittorrent 5.x inside the debootstrapped trixie folder
``.toolchain/trixie-root``, run through ``chroot``. A chroot shares the host's network, so
127.0.0.1 works; paths handed to the daemon must be the ones it sees inside the chroot
(``QbtDaemon.inner``).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
import functools
import hashlib
import os
from pathlib import Path
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid

REPO_ROOT = Path(__file__).resolve().parents[2]
TRIXIE_ROOT = REPO_ROOT / ".toolchain" / "trixie-root"
QBT_USER = "tester"
QBT_PASS = "s3cret pass/+@"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def qbt_password_pbkdf2(password: str, salt: bytes | None = None) -> str:
    """Value of ``WebUI\\Password_PBKDF2`` (qBittorrent >= 4.2)."""
    salt = os.urandom(16) if salt is None else salt
    key = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, 100_000, dklen=64)
    return f"@ByteArray({base64.b64encode(salt).decode()}:{base64.b64encode(key).decode()})"


@functools.cache
def _cached_hash(password: str) -> str:  # PBKDF2 costs ~0.1 s: once per session
    return qbt_password_pbkdf2(password)


def available_flavours() -> list[str]:
    """qBittorrent builds present on this machine: "4" (host package) and/or "5" (trixie chroot)."""
    flavours = []
    if shutil.which("qbittorrent-nox"):
        flavours.append("4")
    if (TRIXIE_ROOT / "usr" / "bin" / "qbittorrent-nox").exists():
        flavours.append("5")
    return flavours


@dataclass
class QbtDaemon:
    """A running daemon. ``base`` is where a host-side file lives for paths handed to the daemon."""

    url: str
    username: str
    password: str
    flavour: str
    workdir: Path
    chroot: Path | None
    proc: subprocess.Popen[bytes]
    startup_s: float
    log_path: Path
    extra: dict[str, str] = field(default_factory=dict)

    def inner(self, host_path: Path) -> str:
        """The path the daemon sees for a host path under ``workdir``."""
        if self.chroot is None:
            return str(host_path)
        return "/" + str(host_path.resolve().relative_to(self.chroot.resolve()))

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM and wait (a clean exit writes fastresume data); SIGKILL as a last resort."""
        stop_process(self.proc, timeout)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """Stop a daemon started by :func:`start_qbt`."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def write_conf(profile: Path, save_path: str, *, localhost_auth: bool = True) -> None:
    """Write qBittorrent.conf before the first start (keys honoured by 4.5.2 and 5.x)."""
    conf = profile / "qBittorrent" / "config" / "qBittorrent.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    blackhole = (
        free_port()
    )  # SOCKS5 "proxy" where nothing listens: announces are refused on loopback
    conf.write_text(
        "[LegalNotice]\nAccepted=true\n\n"
        "[BitTorrent]\n"
        "Session\\DHTEnabled=false\nSession\\LSDEnabled=false\nSession\\PeXEnabled=false\n"
        "Session\\Interface=lo\nSession\\InterfaceName=lo\nSession\\InterfaceAddress=127.0.0.1\n"
        "Session\\ProxyPeerConnections=true\nSession\\ProxyHostnameLookup=true\n"
        "Session\\RefreshInterval=250\n"
        f"Session\\DefaultSavePath={save_path}\n\n"
        "[Network]\nPortForwardingEnabled=false\nProxy\\Type=SOCKS5\nProxy\\IP=127.0.0.1\n"
        f"Proxy\\Port={blackhole}\nProxy\\OnlyForTorrents=false\nProxy\\HostnameLookupEnabled=true\n"
        "Proxy\\Profiles\\BitTorrent=true\nProxy\\Profiles\\Misc=true\nProxy\\Profiles\\RSS=true\n\n"
        "[Preferences]\nConnection\\ResolvePeerCountries=false\nWebUI\\Address=127.0.0.1\n"
        f"WebUI\\Username={QBT_USER}\n"
        f'WebUI\\Password_PBKDF2="{_cached_hash(QBT_PASS)}"\n'
        f"WebUI\\LocalHostAuth={'true' if localhost_auth else 'false'}\n"
        "WebUI\\MaxAuthenticationFailCount=0\n"
    )


def start_qbt(
    workdir: Path | None = None,
    *,
    flavour: str = "4",
    localhost_auth: bool = True,
    timeout: float = 30.0,
    port: int | None = None,
) -> QbtDaemon:
    """Start a private daemon and wait until its Web UI answers.

    For flavour "5" the work dir is created inside the chroot (``workdir`` is ignored) and removed
    when :func:`cleanup` is called.
    """
    chroot: Path | None = None
    if flavour == "5":
        chroot = TRIXIE_ROOT
        workdir = TRIXIE_ROOT / "tmp" / f"mam-guard-{uuid.uuid4().hex[:12]}"
    elif flavour != "4":
        raise ValueError(f"unknown qBittorrent flavour {flavour!r}")
    assert workdir is not None
    workdir.mkdir(parents=True, exist_ok=True)
    profile = workdir / "profile"
    downloads = workdir / "downloads"
    downloads.mkdir(exist_ok=True)

    def inner(path: Path) -> str:
        return str(path) if chroot is None else "/" + str(path.relative_to(chroot))

    write_conf(profile, inner(downloads), localhost_auth=localhost_auth)
    port = port or free_port()
    args = [
        f"--profile={inner(profile)}",
        f"--webui-port={port}",
        f"--torrenting-port={free_port()}",
    ]
    if chroot is None:
        binary = shutil.which("qbittorrent-nox")
        if binary is None:
            raise FileNotFoundError("qbittorrent-nox is not installed (scripts/setup installs it)")
        cmd = [binary, *args]
    else:
        cmd = ["chroot", str(chroot), "/usr/bin/qbittorrent-nox", *args]
    log_path = workdir / "qbittorrent-nox.log"
    started = time.monotonic()
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in pytest must not hit the daemon first
            env={**os.environ, "HOME": inner(workdir), "QBT_CONFIRM_LEGAL_NOTICE": "1"},
        )
    base = f"http://127.0.0.1:{port}"
    while True:
        if proc.poll() is not None:
            log = log_path.read_text(errors="replace")
            raise RuntimeError(f"qbittorrent-nox exited rc={proc.returncode}:\n{log}")
        try:
            urllib.request.urlopen(base + "/api/v2/app/version", timeout=1).close()
            break
        except urllib.error.HTTPError:  # 403 before login: the Web UI is up
            break
        except OSError:
            if time.monotonic() - started > timeout:
                stop_process(proc)
                raise TimeoutError("qbittorrent-nox Web UI did not come up") from None
            time.sleep(0.05)
    return QbtDaemon(
        url=base,
        username=QBT_USER,
        password=QBT_PASS,
        flavour=flavour,
        workdir=workdir,
        chroot=chroot,
        proc=proc,
        startup_s=time.monotonic() - started,
        log_path=log_path,
    )


def cleanup(daemon: QbtDaemon) -> None:
    """Stop the daemon; remove a chroot work dir (a host work dir is pytest's tmp_path)."""
    daemon.stop()
    if daemon.chroot is not None:
        shutil.rmtree(daemon.workdir, ignore_errors=True)
