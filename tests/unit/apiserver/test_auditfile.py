"""The audit log file's rotation, as kube-apiserver's --audit-log-max* flags (lumberjack)."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from timonel.apiserver.auditfile import (
    MEGABYTE,
    RotatingLog,
    Rotation,
    backup_name,
    backup_time,
    backups_to_remove,
    rotation_problems,
)

LOG = Path("/var/log/audit.log")
NOW = datetime.datetime(2026, 11, 26, 16, 30, 0, 123456, tzinfo=datetime.UTC)


def test_backup_names_carry_the_utc_rotation_time_to_the_millisecond() -> None:
    assert backup_name(LOG, NOW) == "audit-2026-11-26T16-30-00.123.log"
    east = NOW.astimezone(datetime.timezone(datetime.timedelta(hours=2)))
    assert backup_name(LOG, east) == "audit-2026-11-26T16-30-00.123.log"
    assert backup_name(Path("/logs/audit"), NOW) == "audit-2026-11-26T16-30-00.123"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("audit-2026-11-26T16-30-00.123.log", NOW.replace(microsecond=123000)),
        ("audit.log", None),
        ("audit-2026-11-26T16-30-00.log", None),
        ("audit-notatime.123.log", None),
        ("other-2026-11-26T16-30-00.123.log", None),
        ("audit-2026-11-26T16-30-00.123.log.gz", None),
    ],
)
def test_only_names_of_backups_of_this_file_parse(
    name: str, expected: datetime.datetime | None
) -> None:
    assert backup_time(LOG, name) == expected


def _backups(days_ago: list[int]) -> list[str]:
    return [backup_name(LOG, NOW - datetime.timedelta(days=d, minutes=1)) for d in days_ago]


@pytest.mark.parametrize(
    ("rotation", "days_ago", "removed"),
    [
        (Rotation(), [0, 1, 30], []),
        (Rotation(max_backups=2), [0, 1, 30], [30]),
        (Rotation(max_backups=2), [30, 0, 1, 2], [2, 30]),
        (Rotation(max_age_days=7), [0, 6, 8, 30], [8, 30]),
        (Rotation(max_backups=1, max_age_days=7), [0, 6, 30], [6, 30]),
        (Rotation(max_backups=3, max_age_days=1), [0, 2], [2]),
    ],
)
def test_retention_drops_the_oldest_beyond_the_count_and_the_expired(
    rotation: Rotation, days_ago: list[int], removed: list[int]
) -> None:
    names = [*_backups(days_ago), "audit.log", "unrelated.txt"]
    assert sorted(backups_to_remove(LOG, names, NOW, rotation)) == sorted(_backups(removed))


def test_negative_flags_are_refused_in_kube_apiserver_words() -> None:
    assert rotation_problems(Rotation()) == []
    assert rotation_problems(Rotation(max_size_mb=-1, max_age_days=-2)) == [
        "--audit-log-maxage -2 can't be a negative number",
        "--audit-log-maxsize -1 can't be a negative number",
    ]


def test_the_file_rotates_before_a_write_would_pass_the_size(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    path.write_bytes(b"x" * (MEGABYTE // 2))  # what an earlier run left counts
    log = RotatingLog(path, Rotation(max_size_mb=1, max_backups=1))
    chunk = b"y" * (MEGABYTE // 3)
    log.write(chunk)  # 5/6 MB: fits
    log.write(chunk)  # would make 7/6: rotate first
    log.flush()
    backups = sorted(p for p in tmp_path.iterdir() if p.name != "audit.log")
    assert len(backups) == 1
    assert backups[0].read_bytes() == b"x" * (MEGABYTE // 2) + chunk
    assert path.read_bytes() == chunk
    for _ in range(3):  # two more rotations: only the newest backup is kept
        log.write(b"z" * (MEGABYTE - 10))
    log.close()
    assert len([p for p in tmp_path.iterdir() if p.name != "audit.log"]) == 1
    assert path.read_bytes() == b"z" * (MEGABYTE - 10)


def test_a_write_larger_than_the_maximum_is_refused_and_nothing_is_lost(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    log = RotatingLog(path, Rotation(max_size_mb=1))
    log.write(b"kept\n")
    with pytest.raises(OSError, match="exceeds maximum file size"):
        log.write(b"x" * (MEGABYTE + 1))
    log.close()
    assert path.read_bytes() == b"kept\n"
    assert [p.name for p in tmp_path.iterdir()] == ["audit.log"]


def test_the_server_refuses_negative_rotation_flags(tmp_path: Path) -> None:
    from timonel.server import ServerOptions, open_audit_log

    policy = tmp_path / "policy.yaml"
    policy.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: Metadata}]\n")
    options = ServerOptions(
        data_dir=tmp_path,
        audit_log_path=str(tmp_path / "audit.log"),
        audit_policy_file=policy,
        audit_log_rotation=Rotation(max_backups=-3),
    )
    with pytest.raises(SystemExit, match="--audit-log-maxbackup -3 can't be a negative number"):
        open_audit_log(options)
    assert not (tmp_path / "audit.log").exists()
