"""Build what the lab guest boots: a Debian cloud kernel, runit, busybox and an initramfs.

* The kernel is the newest ``linux-image-X.Y.Z-N-cloud-amd64`` that ``apt-cache search`` finds after
  ``apt-get update`` (the ABI number is never pinned: old ones leave the mirror). It is fetched with
  ``apt-get download`` and unpacked with ``dpkg -x`` into the cache; nothing is installed system-wide.
  Only ``vmlinuz`` and ``config`` are kept: the guest needs no module (its state disk is NVMe, which
  the cloud kernel has built in).
* runit (``sv``, ``runsv``, ``runsvdir``) is fetched the same way: Debian's busybox-static has no
  runit applets. Its binaries are dynamic, so the host's C library goes into the initramfs with them.
* busybox is the host's static one (package busybox-static); getty and login are busybox's own.
* The initramfs is the guest's root (``rootfs/`` beside this file, ``links.txt``, busybox, runit and an
  ``/etc/shadow`` whose root hash is ``openssl passwd -6``), packed with ``cpio -H newc`` and gzip. It is
  cached under a digest of its content, so an unchanged guest is not packed twice.

The cache is ``$CONSOLEBOT_LAB_CACHE``, else ``$XDG_CACHE_HOME/consolebot/lab``, else
``~/.cache/consolebot/lab``. ``LabBuilder.ensure()`` reuses it; ``ensure(refresh=True)`` asks apt again.
"""

from __future__ import annotations

import bz2
import contextlib
import dataclasses
import fcntl
import gzip
import hashlib
import importlib.resources
import json
import lzma
import os
import re
import secrets
import shutil
import stat
import struct
import subprocess
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path

from consolebot.errors import EXIT_USAGE, ConsoleBotError
from consolebot.secrets.secret import Secret

CACHE_ENV = "CONSOLEBOT_LAB_CACHE"
PASSWORD_ENV = "CONSOLEBOT_LAB_PASSWORD"
DEFAULT_PASSWORD = "labpass"
KERNEL_SEARCH = r"^linux-image-[0-9.]+-[0-9]+-cloud-amd64$"
KERNEL_NAME = re.compile(r"^linux-image-(?P<version>[0-9]+(?:\.[0-9]+)*)-(?P<abi>[0-9]+)-cloud-amd64$")
RUNIT_PACKAGE = "runit"
RUNIT_TOOLS = ("sv", "runsv", "runsvdir", "chpst", "svlogd")

# Host programs the lab needs, and the Debian package of each (for the error message).
HOST_TOOLS = {
    "qemu-system-x86_64": "qemu-system-x86",
    "busybox": "busybox-static",
    "cpio": "cpio",
    "openssl": "openssl",
    "apt-get": "apt",
    "apt-cache": "apt",
    "dpkg-deb": "dpkg",
    "ldd": "libc-bin",
    "lz4": "lz4",
    "zstd": "zstd",
}
BUILD_TOOLS = ("busybox", "cpio", "openssl", "apt-get", "apt-cache", "dpkg-deb", "ldd")

Log = Callable[[str], None]


class LabBuildError(ConsoleBotError):
    """The lab cannot be built: a host package is missing, apt failed, or the cache is unusable."""

    exit_code = EXIT_USAGE


@dataclass(frozen=True)
class KernelInfo:
    """A Debian cloud kernel unpacked in the cache."""

    package: str  # linux-image-6.1.0-56-cloud-amd64
    version: str  # the package version, 6.1.192-2
    release: str  # uname -r, 6.1.0-56-cloud-amd64
    vmlinuz: Path
    vmlinux: Path | None = None  # the same kernel uncompressed, when it has a PVH entry

    @property
    def banner(self) -> str:
        """The start of the kernel's first console line."""
        return f"Linux version {self.release}"

    @property
    def boot_image(self) -> Path:
        """What QEMU's -kernel gets: the PVH vmlinux if there is one, else the bzImage."""
        return self.vmlinux or self.vmlinuz


@dataclass(frozen=True)
class RunitInfo:
    version: str
    folder: Path


@dataclass(frozen=True)
class LabKit:
    """Everything a guest boots: the kernel and the initramfs, and what they were built from."""

    cache_dir: Path
    kernel: KernelInfo
    initramfs: Path
    runit_version: str
    busybox_version: str
    qemu: str

    def describe(self) -> dict[str, str]:
        return {
            "cache": str(self.cache_dir),
            "kernel_package": self.kernel.package,
            "kernel_version": self.kernel.version,
            "kernel_release": self.kernel.release,
            "vmlinuz": str(self.kernel.vmlinuz),
            "boot_image": str(self.kernel.boot_image),
            "initramfs": str(self.initramfs),
            "runit": self.runit_version,
            "busybox": self.busybox_version,
            "qemu": self.qemu,
        }


def default_cache_dir() -> Path:
    """``$CONSOLEBOT_LAB_CACHE``, else ``$XDG_CACHE_HOME/consolebot/lab``, else ``~/.cache/consolebot/lab``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "consolebot" / "lab"


def default_password() -> Secret:
    """The guest's root password: ``$CONSOLEBOT_LAB_PASSWORD``, else ``labpass``."""
    return Secret(os.environ.get(PASSWORD_ENV) or DEFAULT_PASSWORD, "lab-guest/root")


def require_tools(*names: str) -> dict[str, str]:
    """Given program names, return their paths; raise ``LabBuildError`` naming the missing packages."""
    found: dict[str, str] = {}
    missing: list[str] = []
    for name in names:
        path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
        if path is None:
            missing.append(name)
        else:
            found[name] = path
    if missing:
        packages = sorted({HOST_TOOLS.get(n, n) for n in missing})
        raise LabBuildError(
            f"the lab needs {', '.join(missing)}: install the Debian package(s) {' '.join(packages)} "
            "(apt-get install --no-install-recommends ...)"
        )
    return found


def kernel_sort_key(package: str) -> tuple[tuple[int, ...], int]:
    """Given a cloud kernel package name, return a key that sorts older before newer."""
    m = KERNEL_NAME.match(package)
    if m is None:
        raise ValueError(f"not a Debian cloud kernel package name: {package!r}")
    return tuple(int(p) for p in m.group("version").split(".")), int(m.group("abi"))


def newest_kernel_package(names: list[str]) -> str:
    """Given package names (``apt-cache search`` output names), return the newest cloud kernel."""
    kernels = [n for n in names if KERNEL_NAME.match(n)]
    if not kernels:
        raise LabBuildError(
            "apt-cache finds no Debian cloud kernel (linux-image-*-cloud-amd64): check the apt sources "
            "and run 'apt-get update' as root"
        )
    return max(kernels, key=kernel_sort_key)


def is_static_elf(path: Path) -> bool:
    """Given an ELF file, return True if it has no program interpreter (statically linked)."""
    with open(path, "rb") as f:
        head = f.read(64)
        if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
            return False  # not a little-endian 64-bit ELF
        phoff = struct.unpack_from("<Q", head, 0x20)[0]
        phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    for i in range(phnum):
        (p_type,) = struct.unpack_from("<I", table, i * phentsize)
        if p_type == 3:  # PT_INTERP
            return False
    return True


def _elf_complete(data: bytes) -> bool:
    """Given bytes, return True if they hold a whole little-endian 64-bit ELF (every segment present)."""
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return False
    phoff = struct.unpack_from("<Q", data, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    if phoff + phentsize * phnum > len(data):
        return False
    for i in range(phnum):
        _type, _flags, offset, _vaddr, _paddr, filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if offset + filesz > len(data):
            return False
    return True


def has_pvh_entry(elf: bytes) -> bool:
    """Given a whole ELF, return True if a Xen note XEN_ELFNOTE_PHYS32_ENTRY (18) gives a PVH entry."""
    phoff = struct.unpack_from("<Q", elf, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    for i in range(phnum):
        p_type, _flags, offset, _vaddr, _paddr, filesz = struct.unpack_from("<IIQQQQ", elf, phoff + i * phentsize)
        if p_type != 4:  # PT_NOTE
            continue
        pos, end = offset, offset + filesz
        while pos + 12 <= end:
            namesz, descsz, n_type = struct.unpack_from("<III", elf, pos)
            name = elf[pos + 12 : pos + 12 + namesz].rstrip(b"\0")
            if name == b"Xen" and n_type == 18:
                return True
            pos += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3)
    return False


# The compressors a bzImage's payload may use: (name, magic, Debian package of the tool if not Python's).
PAYLOAD_KINDS = (
    ("gzip", b"\x1f\x8b", ""),
    ("xz", b"\xfd7zXZ\x00", ""),
    ("bzip2", b"BZh", ""),
    ("lzma", b"\x5d\x00\x00", ""),
    ("lz4", b"\x02\x21\x4c\x18", "lz4"),
    ("zstd", b"\x28\xb5\x2f\xfd", "zstd"),
)


def bzimage_payload(bzimage: bytes) -> tuple[str, str, bytes]:
    """Given a bzImage, return its payload's compressor, the package of its tool, and the payload.

    The x86 boot protocol (>= 2.08) gives the payload's place in the setup header: it starts
    ``payload_offset`` bytes after the (setup_sects + 1) * 512 bytes of real-mode setup.
    """
    if len(bzimage) < 0x250 or bzimage[0x202:0x206] != b"HdrS":
        raise LabBuildError("the kernel image is not a bzImage (no 'HdrS' setup header)")
    setup_sects = bzimage[0x1F1] or 4
    offset, length = struct.unpack_from("<II", bzimage, 0x248)
    start = (setup_sects + 1) * 512 + offset
    payload = bzimage[start : start + length]
    for kind, magic, package in PAYLOAD_KINDS:
        if payload.startswith(magic):
            return kind, package, payload
    raise LabBuildError(f"the kernel's payload starts with {payload[:4].hex()}: an unknown compressor")


def _decompress(kind: str, payload: bytes) -> bytes:
    if kind == "gzip":
        return zlib.decompressobj(31).decompress(payload)
    if kind in ("xz", "lzma"):
        fmt = lzma.FORMAT_XZ if kind == "xz" else lzma.FORMAT_ALONE
        return lzma.LZMADecompressor(format=fmt).decompress(payload)
    if kind == "bzip2":
        return bz2.BZ2Decompressor().decompress(payload)
    # lz4, zstd: the kernel appends the uncompressed size, which the tool calls garbage: the output
    # is whole all the same (checked by the caller)
    done = subprocess.run([kind, "-d", "-c"], input=payload, capture_output=True, check=False, timeout=300)
    return done.stdout


def extract_vmlinux(bzimage: bytes) -> bytes:
    """Given a bzImage, return the ELF kernel inside it (``LabBuildError`` if its tool is missing)."""
    kind, package, payload = bzimage_payload(bzimage)
    if package:
        require_tools(kind)
    try:
        elf = _decompress(kind, payload)
    except (OSError, EOFError, ValueError, lzma.LZMAError, zlib.error, subprocess.SubprocessError) as exc:
        raise LabBuildError(f"cannot unpack the kernel's {kind} payload: {exc}") from None
    if not _elf_complete(elf):
        raise LabBuildError(f"the kernel's {kind} payload did not unpack to a whole ELF file")
    return elf


def _run(argv: list[str], what: str, cwd: Path | None = None, stdin: bytes | None = None,
         timeout_s: float = 600.0) -> str:
    try:
        done = subprocess.run(argv, cwd=cwd, input=stdin, capture_output=True, timeout=timeout_s, check=False)
    except FileNotFoundError:
        require_tools(argv[0])
        raise
    except subprocess.TimeoutExpired:
        raise LabBuildError(f"{what}: '{' '.join(argv[:3])} ...' took more than {timeout_s:g} s") from None
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip().splitlines()[-5:]
        raise LabBuildError(f"{what} failed (exit {done.returncode}): {' / '.join(err) or 'no message'}")
    return done.stdout.decode("utf-8", "replace")


def _guest_files() -> Traversable:
    return importlib.resources.files("consolebot.lab.guest")


def _walk(node: Traversable, rel: str = "") -> Iterator[tuple[str, Traversable]]:
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        path = f"{rel}/{child.name}" if rel else child.name
        if child.is_dir():
            yield from _walk(child, path)
        elif child.is_file():
            yield path, child


def guest_links() -> list[tuple[str, str]]:
    """The (path, target) symlinks of ``links.txt``."""
    links = []
    for line in (_guest_files() / "links.txt").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        path, target = line.split()
        links.append((path, target))
    return links


class LabBuilder:
    """Given a cache folder, fetch and build the lab guest there (and reuse what is there)."""

    def __init__(self, cache_dir: Path | None = None, log: Log | None = None) -> None:
        self.cache_dir = (cache_dir or default_cache_dir()).expanduser()
        self.log: Log = log or (lambda text: None)
        self._apt_updated = False

    # -- the whole kit ---------------------------------------------------------------------------
    def ensure(self, refresh: bool = False, password: Secret | None = None) -> LabKit:
        """Return a ready kit, fetching only what the cache lacks (everything anew with ``refresh``)."""
        tools = require_tools("qemu-system-x86_64", *BUILD_TOOLS)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with self._locked():
            kernel = self.cached_kernel()
            if refresh or kernel is None:
                package = self.resolve_kernel_package()
                if kernel is None or kernel.package != package:
                    kernel = self.fetch_kernel(package)
                else:
                    self.log(f"kernel {kernel.package} {kernel.version} is the newest; kept")
            runit = self.cached_runit()
            if refresh or runit is None:
                runit = self.fetch_runit()
            initramfs = self.build_initramfs(runit, password or default_password())
        return LabKit(
            cache_dir=self.cache_dir,
            kernel=kernel,
            initramfs=initramfs,
            runit_version=runit.version,
            busybox_version=self.busybox_version(),
            qemu=tools["qemu-system-x86_64"],
        )

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.cache_dir / ".lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # -- apt -------------------------------------------------------------------------------------------
    def apt_update(self) -> None:
        """``apt-get update`` once per builder (as root; otherwise the existing lists are used)."""
        if self._apt_updated:
            return
        self._apt_updated = True
        if os.geteuid() != 0:
            self.log("not root: apt-get update skipped, using the apt lists as they are")
            return
        self.log("apt-get update")
        _run(["apt-get", "update", "-q"], "apt-get update", timeout_s=900)

    def resolve_kernel_package(self) -> str:
        """Return the newest Debian cloud kernel package apt knows, after ``apt-get update``."""
        self.apt_update()
        out = _run(["apt-cache", "search", "--names-only", KERNEL_SEARCH], "apt-cache search")
        names = [line.split(" - ", 1)[0].strip() for line in out.splitlines() if line.strip()]
        package = newest_kernel_package(names)
        self.log(f"newest cloud kernel: {package} (of {len(names)})")
        return package

    def _download(self, package: str, folder: Path) -> Path:
        argv = ["apt-get", "download", "-q"]
        if os.geteuid() == 0:
            argv += ["-o", "APT::Sandbox::User=root"]  # else apt warns that it downloads unsandboxed
        _run([*argv, package], f"apt-get download {package}", cwd=folder, timeout_s=900)
        debs = sorted(folder.glob(f"{package}_*.deb"))
        if not debs:
            raise LabBuildError(f"apt-get download {package} left no .deb in {folder}")
        return debs[-1]

    @staticmethod
    def _deb_version(deb: Path) -> str:
        return _run(["dpkg-deb", "-f", str(deb), "Version"], "dpkg-deb -f").strip()

    # -- kernel ------------------------------------------------------------------------------------------
    def cached_kernel(self) -> KernelInfo | None:
        info = self.cache_dir / "kernel.json"
        try:
            data = json.loads(info.read_text(encoding="utf-8"))
            kernel = KernelInfo(data["package"], data["version"], data["release"], Path(data["vmlinuz"]),
                                Path(data["vmlinux"]) if data.get("vmlinux") else None)
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not kernel.vmlinuz.is_file():
            return None
        if kernel.vmlinux is None or not kernel.vmlinux.is_file():
            kernel = self._with_vmlinux(kernel)
        return kernel

    def _with_vmlinux(self, kernel: KernelInfo) -> KernelInfo:
        """Unpack the bzImage's ELF kernel beside it (QEMU boots it through its PVH entry).

        A warm reset under TCG otherwise costs 1-12 s: the bzImage's decompressor writes over pages
        holding code translated during the previous boot, and QEMU invalidates it page by page.
        """
        target = kernel.vmlinuz.with_name("vmlinux")
        elf = extract_vmlinux(kernel.vmlinuz.read_bytes())
        if not has_pvh_entry(elf):
            self.log(f"{kernel.vmlinuz}: no PVH entry; booting the bzImage (warm resets are slower)")
            kernel = dataclasses.replace(kernel, vmlinux=None)
        else:
            partial = target.with_suffix(".part")
            partial.write_bytes(elf)
            os.replace(partial, target)
            kernel = dataclasses.replace(kernel, vmlinux=target)
            self.log(f"unpacked {target} ({len(elf) // (1 << 20)} MiB, PVH entry)")
        self._write_kernel_json(kernel)
        return kernel

    def _write_kernel_json(self, kernel: KernelInfo) -> None:
        self._write_json("kernel.json", {
            "package": kernel.package, "version": kernel.version, "release": kernel.release,
            "vmlinuz": str(kernel.vmlinuz), "vmlinux": str(kernel.vmlinux) if kernel.vmlinux else "",
        })

    def fetch_kernel(self, package: str) -> KernelInfo:
        """Download ``package``, unpack it, keep vmlinuz and config in the cache; return it."""
        release = package.removeprefix("linux-image-")
        kernels = self.cache_dir / "kernels"
        kernels.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.cache_dir, prefix="fetch-") as tmp:
            work = Path(tmp)
            self.log(f"apt-get download {package}")
            deb = self._download(package, work)
            version = self._deb_version(deb)
            self.log(f"dpkg -x {deb.name}")
            _run(["dpkg", "-x", str(deb), str(work / "root")], f"dpkg -x {deb.name}")
            boot = work / "root" / "boot"
            vmlinuz = boot / f"vmlinuz-{release}"
            if not vmlinuz.is_file():
                raise LabBuildError(f"{deb.name} holds no boot/vmlinuz-{release}")
            final = kernels / release
            staged = work / "keep"
            staged.mkdir()
            shutil.copy2(vmlinuz, staged / "vmlinuz")
            config = boot / f"config-{release}"
            if config.is_file():
                shutil.copy2(config, staged / "config")
            if final.exists():
                shutil.rmtree(final)
            os.replace(staged, final)
        kernel = self._with_vmlinux(KernelInfo(package, version, release, final / "vmlinuz"))
        for old in kernels.iterdir():
            if old.name != release:
                shutil.rmtree(old, ignore_errors=True)
        self.log(f"kernel {package} {version} cached in {final}")
        return kernel

    # -- runit ---------------------------------------------------------------------------------------------
    def cached_runit(self) -> RunitInfo | None:
        try:
            data = json.loads((self.cache_dir / "runit.json").read_text(encoding="utf-8"))
            runit = RunitInfo(data["version"], Path(data["folder"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return runit if all((runit.folder / t).is_file() for t in RUNIT_TOOLS) else None

    def fetch_runit(self) -> RunitInfo:
        """Download Debian's runit and keep its supervision tools in the cache."""
        self.apt_update()
        with tempfile.TemporaryDirectory(dir=self.cache_dir, prefix="fetch-") as tmp:
            work = Path(tmp)
            self.log(f"apt-get download {RUNIT_PACKAGE}")
            deb = self._download(RUNIT_PACKAGE, work)
            version = self._deb_version(deb)
            _run(["dpkg", "-x", str(deb), str(work / "root")], f"dpkg -x {deb.name}")
            staged = work / "keep"
            staged.mkdir()
            for tool in RUNIT_TOOLS:
                src = work / "root" / "usr" / "bin" / tool
                if not src.is_file():
                    raise LabBuildError(f"{deb.name} holds no usr/bin/{tool}")
                shutil.copy2(src, staged / tool)
            final = self.cache_dir / "runit" / version
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():
                shutil.rmtree(final)
            os.replace(staged, final)
        runit = RunitInfo(version, final)
        self._write_json("runit.json", {"version": version, "folder": str(final)})
        for old in final.parent.iterdir():
            if old.name != version:
                shutil.rmtree(old, ignore_errors=True)
        self.log(f"runit {version} cached in {final}")
        return runit

    # -- busybox ---------------------------------------------------------------------------------------------
    @staticmethod
    def busybox_path() -> Path:
        path = Path(require_tools("busybox")["busybox"]).resolve()
        if not is_static_elf(path):
            raise LabBuildError(f"{path} is not statically linked: install the Debian package busybox-static")
        return path

    @classmethod
    def busybox_version(cls) -> str:
        out = subprocess.run([str(cls.busybox_path())], capture_output=True, check=False).stdout
        first = out.decode("utf-8", "replace").splitlines()[:1]
        m = re.match(r"BusyBox (v\S+(?: \([^)]*\))?)", first[0]) if first else None
        return m.group(1) if m else "unknown"

    # -- initramfs ----------------------------------------------------------------------------------------------
    def _salt(self) -> str:
        path = self.cache_dir / "salt"
        try:
            salt = path.read_text(encoding="ascii").strip()
        except OSError:
            salt = ""
        if not re.fullmatch(r"[A-Za-z0-9]{16}", salt):
            salt = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
                           for _ in range(16))
            path.write_text(salt + "\n", encoding="ascii")
        return salt

    def password_hash(self, password: Secret) -> str:
        """``openssl passwd -6`` of the password (given on stdin, never on a command line)."""
        out = _run(["openssl", "passwd", "-6", "-salt", self._salt(), "-stdin"], "openssl passwd -6",
                   stdin=password.reveal().encode("utf-8") + b"\n")
        hashed = out.strip()
        if not hashed.startswith("$6$"):
            raise LabBuildError("openssl passwd -6 gave no SHA-512 crypt hash")
        return hashed

    def stage_root(self, root: Path, runit: RunitInfo, password: Secret) -> None:
        """Assemble the guest's root file system in ``root``."""
        for d in ("bin", "sbin", "usr/bin", "usr/sbin", "usr/local/bin", "usr/local/sbin", "etc", "proc",
                  "sys", "dev", "run", "tmp", "root", "var/log", "var/lib", "lib", "lib64"):
            (root / d).mkdir(parents=True, exist_ok=True)
        busybox = self.busybox_path()
        shutil.copyfile(busybox, root / "bin" / "busybox")
        os.chmod(root / "bin" / "busybox", 0o755)
        applets = _run([str(busybox), "--list-full"], "busybox --list-full").split()
        for applet in applets:
            if applet == "bin/busybox":
                continue
            link = root / applet
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.is_symlink():
                link.symlink_to("/bin/busybox")
        libraries: set[str] = set()
        for tool in RUNIT_TOOLS:
            dest = root / "usr" / "bin" / tool
            shutil.copyfile(runit.folder / tool, dest)
            os.chmod(dest, 0o755)
            libraries |= self._shared_libraries(runit.folder / tool)
        for lib in sorted(libraries):
            dest = root / lib.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(os.path.realpath(lib), dest)
            os.chmod(dest, 0o755)
        for rel, node in _walk(_guest_files() / "rootfs"):
            dest = root / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            data = node.read_bytes()
            dest.write_bytes(data)
            os.chmod(dest, 0o755 if data.startswith(b"#!") else 0o644)
        for path, target in guest_links():
            link = root / path.lstrip("/")
            link.parent.mkdir(parents=True, exist_ok=True)
            if link.is_symlink() or link.is_file():
                link.unlink()
            elif link.is_dir():
                shutil.rmtree(link)
            link.symlink_to(target)
        shadow = root / "etc" / "shadow"
        shadow.write_text(
            f"root:{self.password_hash(password)}:19000:0:99999:7:::\nmysql:!:19000::::::\npostgres:*:19000::::::\n",
            encoding="utf-8",
        )
        os.chmod(shadow, 0o600)
        os.chmod(root / "root", 0o700)
        os.chmod(root / "tmp", 0o1777)

    @staticmethod
    def _shared_libraries(binary: Path) -> set[str]:
        """The absolute paths of the shared libraries (and the loader) ``binary`` needs, from ldd."""
        out = _run(["ldd", str(binary)], f"ldd {binary.name}")
        libs = set()
        for line in out.splitlines():
            m = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
            if m:
                libs.add(m.group(1))
        return libs

    @staticmethod
    def tree_digest(root: Path) -> str:
        """A digest of every path, mode, link target and content under ``root``."""
        h = hashlib.sha256()
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root).as_posix()
            st = path.lstat()
            h.update(f"{rel}\0{st.st_mode:o}\0".encode())
            if stat.S_ISLNK(st.st_mode):
                h.update(os.readlink(path).encode())
            elif stat.S_ISREG(st.st_mode):
                h.update(path.read_bytes())
            h.update(b"\0")
        return h.hexdigest()

    def build_initramfs(self, runit: RunitInfo, password: Secret) -> Path:
        """Stage the guest's root, and pack it with cpio and gzip unless the cache has it already."""
        out_dir = self.cache_dir / "initramfs"
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.cache_dir, prefix="root-") as tmp:
            root = Path(tmp) / "root"
            root.mkdir()
            self.stage_root(root, runit, password)
            digest = self.tree_digest(root)[:20]
            target = out_dir / f"initramfs-{digest}.cpio.gz"
            if target.is_file():
                self.log(f"initramfs {target.name} is up to date")
                return target
            names = ["."]
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames.sort()
                base = Path(dirpath).relative_to(root)
                for name in sorted(dirnames) + sorted(filenames):
                    names.append((base / name).as_posix())
            archive = subprocess.run(
                ["cpio", "-o", "-H", "newc", "-R", "0:0", "--quiet"],
                cwd=root, input="\n".join(names).encode() + b"\n", capture_output=True, check=False,
            )
            if archive.returncode != 0:
                raise LabBuildError(f"cpio failed: {archive.stderr.decode('utf-8', 'replace').strip()}")
            partial = target.with_suffix(".part")
            partial.write_bytes(gzip.compress(archive.stdout, compresslevel=9, mtime=0))
            os.replace(partial, target)
        # QEMU keeps -initrd in memory once started: an hour-old image is nobody's any more
        for old in out_dir.glob("initramfs-*.cpio.gz"):
            if old != target and time.time() - old.stat().st_mtime > 3600:
                old.unlink(missing_ok=True)
        self.log(f"initramfs {target} ({target.stat().st_size // 1024} KiB)")
        return target

    def _write_json(self, name: str, data: dict[str, str]) -> None:
        path = self.cache_dir / name
        partial = path.with_suffix(".part")
        partial.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        os.replace(partial, path)
