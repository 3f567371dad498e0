"""The event vocabulary: stable names that monitoring and the runbooks consume.

Each event has ``kind``, ``severity`` (info, notice, warning, critical), ``line``
(1-based line number in the raw transcript; CR LF, CR CR LF, LF and a bare CR
each end a line), ``time`` where known, the redacted ``text`` of its line and
``fields``. ``KINDS`` documents every kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from json import JSONEncoder
from json.encoder import encode_basestring_ascii as _jstr
from typing import Any

SEVERITIES = ("info", "notice", "warning", "critical")
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}

KINDS: dict[str, str] = {
    "boot.start": "kernel banner 'Linux version' (field kernel)",
    "boot.firmware": "firmware (BIOS, UEFI, SeaBIOS) output",
    "boot.loader": "boot loader (GRUB 'Loading Linux')",
    "init.start": "init starts (sysvinit 'INIT: version', kernel 'Run /init')",
    "kernel.restart": "the kernel restarts or powers off ('reboot: Restarting system')",
    "kernel.panic": "kernel panic (field reason)",
    "kernel.oops": "kernel oops",
    "kernel.bug": "kernel BUG",
    "kernel.hung_task": "a task blocked for more than N seconds (fields task, pid, seconds)",
    "kernel.soft_lockup": "soft lockup (field cpu)",
    "kernel.rcu_stall": "RCU stall",
    "kernel.oom": "OOM killer (field victim)",
    "kernel.fs_error": "filesystem or block I/O error",
    "kernel.nmi": "the kernel received an NMI (an IPMI 'power diag' shows as this)",
    "sysrq.ack": "the kernel acknowledged a SysRq key (field action)",
    "sysrq.done": "a SysRq action completed ('Emergency Sync complete')",
    "sysrq.disabled": "'This sysrq operation is disabled.'",
    "sysrq.help": "the SysRq help line (unbound key)",
    "afs.start": "OpenAFS starts (fields what: client-start, client-up, server-start)",
    "afs.server_down": "the AFS client lost contact with a file server (fields server, cell)",
    "afs.server_up": "a file server is back up (fields server, cell)",
    "afs.salvage.start": "the salvager starts, or init waits for it",
    "afs.salvage.progress": "the salvager runs (bos 'salvaging file system', SalvageLog lines)",
    "afs.salvage.done": "the salvage finished",
    "afs.busy_volume": "'Waiting for busy volume' (expected after a salvage; fields volume_id, volume)",
    "afs.fileserver.running": "bos status: 'file server running'",
    "afs.fileserver.status": "bos status: another auxiliary status (field status)",
    "afs.bos_unreachable": "bos cannot contact the bosserver",
    "service.ok": "a service started or stopped cleanly (fields service, action)",
    "service.fail": "a service failed (field service where known)",
    "benign": "a known-harmless line (field reason)",
    "db.postgres.ready": "PostgreSQL is up",
    "db.postgres.fail": "PostgreSQL failed to start",
    "db.mysql.crash_recovery": "InnoDB crash recovery after an unclean stop",
    "login.prompt": "a login prompt (field host, empty for a bare 'login: ')",
    "login.password_prompt": "'Password:'",
    "login.incorrect": "'Login incorrect'",
    "login.invalid_password": "busybox login's 'invalid password' line (one per failed attempt)",
    "login.lockout": "too many tries, or the account is locked",
    "login.ok": "a login succeeded (Last login, busybox 'root login on')",
    "shell.prompt": "a shell prompt (fields user, host)",
    "sol.open": "ipmitool's SOL banner",
    "sol.active_elsewhere": "'SOL payload already active on another session'",
    "sol.closed": "'SOL session closed by BMC' or a keepalive failure",
    "console.silent": "no byte for the configured time (live or --follow only; field seconds)",
}


@dataclass(frozen=True)
class Event:
    kind: str
    severity: str
    line: int
    text: str
    fields: dict[str, str] = field(default_factory=dict)
    time: str | None = None
    rule: str = ""
    column: int = 0
    # the JSON text of ``fields`` and ``rule`` (see ``json_tail``) when the classifier made the event, shared by the
    # events of a remembered line so a transcript need not encode them again; a changed ``fields`` is not in it
    json_tail: str | None = field(default=None, compare=False, repr=False)

    def key(self) -> tuple[str, int, int]:
        """What identifies an event regardless of when it was seen."""
        return (self.kind, self.line, self.column)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "severity": self.severity, "line": self.line}
        if self.time is not None:
            out["time"] = self.time
        out["text"] = self.text
        out["fields"] = dict(self.fields)
        out["rule"] = self.rule
        return out


# One event as ``Classifier.feed_hits`` gives it: (line, attributes, made), where ``made`` is the event when one
# was made; else the event is unmade (``classifier.hit_event`` makes it), its attributes those of its remembered
# line's template (``kind``, ``severity``, ``fields``, its JSON in pieces), and ``made`` the line's one
# timestamp (text: the attributes hold the text around it) or None (the attributes hold the whole line's text).
Hit = tuple[int, dict[str, Any], "str | Event | None"]


def as_hits(events: list[Event]) -> list[Hit]:
    """Events as hits (for ``Timeline.feed_all``, ``Transcript.record_events``)."""
    return [(ev.line, ev.__dict__, ev) for ev in events]


_new = object.__new__


def new_event(kind: str, severity: str, line: int, text: str, fields: dict[str, str], time: str | None, rule: str,
              column: int, json_tail: str | None = None) -> Event:
    """``Event(...)`` without the frozen dataclass's field-by-field ``object.__setattr__`` (the hot path)."""
    ev = _new(Event)
    ev.__dict__.update(kind=kind, severity=severity, line=line, text=text, fields=fields, time=time, rule=rule,
                       column=column, json_tail=json_tail)
    return ev


_JSON = JSONEncoder(default=str).encode  # what json.dumps(obj, default=str) gives, without a new encoder each time


def json_fields(fields: dict[str, Any]) -> str:
    """``json.dumps(fields, default=str)``, faster for the usual str to str fields."""
    parts = []
    for k, v in fields.items():
        if type(k) is not str or type(v) is not str:
            return _JSON(fields)
        parts.append(f"{_jstr(k)}: {_jstr(v)}")
    return "{" + ", ".join(parts) + "}"


def json_tail(fields: dict[str, Any], rule: str) -> str:
    """The end of an event's JSON line: ``"fields": {...}, "rule": "..."}``."""
    return '"fields": ' + json_fields(fields) + ', "rule": ' + _jstr(rule) + "}"



def json_head(kind: str, severity: str) -> str:
    """The part of an event's JSON line after ``{"t": ..., "type": "event", ``: ``"kind": ..., "line": ``."""
    return '"kind": ' + _jstr(kind) + ', "severity": ' + _jstr(severity) + ', "line": '


def json_text(text: str) -> str:
    """``"text": "...", `` of an event's JSON line."""
    return '"text": ' + _jstr(text) + ", "


def json_parts(ev: Event) -> tuple[str, str] | None:
    """The JSON around an event's line number and time, made by the classifier for a remembered line, or None.

    They are kept out of the event's fields (``dataclasses.replace`` does not copy them), so they always
    describe this very event.
    """
    attrs = ev.__dict__
    post = attrs.get("_jpost")
    return None if post is None else (attrs["_jpre"], post)
