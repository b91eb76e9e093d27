"""iptables rulesets as data, and the iptables-restore text that installs them.

A `Ruleset` is what one component wants in the tables it manages: per table, its own
chains in order, each with its rules (the text after `-A CHAIN`). Nothing else on the host
is described, so the text is always loaded with `iptables-restore --noflush`: a chain named
in the input (`:CHAIN - [0:0]`) is created or flushed and refilled, every other chain and
rule on the host stays as it is.

`restore_text(current, previous)` is the partial update kube-proxy makes: only the chains
whose rules changed since `previous` was installed are written, and chains that went away
are flushed and deleted (`-X`) in the same transaction. Chains that jump to a deleted chain
changed too, so they are rewritten before the deletion in the same input.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

# The order tables are written in (kube-proxy writes filter before nat).
TABLE_ORDER: tuple[str, ...] = ("raw", "mangle", "filter", "nat")
MAX_CHAIN_NAME = 28
_PLAIN_WORD = re.compile(r"^[A-Za-z0-9_./:,=+@%-]+$")


def quote(text: str) -> str:
    """One argument as iptables-restore reads it: bare when it is a plain word, else in
    double quotes (comments such as "ns/svc:http cluster IP")."""
    if _PLAIN_WORD.match(text):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def comment(text: str) -> str:
    return f"-m comment --comment {quote(text)}"


@dataclass(frozen=True)
class Jump:
    """A rule in a built-in chain that sends traffic into one of the component's chains.

    Installed with `iptables -C || -I` (kube-proxy prepends its jumps); `first` jumps are
    also moved back to the top of their chain when something was inserted above them."""

    table: str
    chain: str
    target: str
    comment: str = ""
    match: tuple[str, ...] = ()
    first: bool = False

    def args(self) -> list[str]:
        """The rule as iptables arguments (after `-t TABLE -C/-I/-D CHAIN`)."""
        args = list(self.match)
        if self.comment:
            args += ["-m", "comment", "--comment", self.comment]
        return [*args, "-j", self.target]


@dataclass
class Ruleset:
    """Chains and their rules, by table; chains keep the order they were first named in."""

    tables: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def chain(self, table: str, name: str) -> list[str]:
        """The rules of `name` (declared empty if it was not yet)."""
        if len(name) > MAX_CHAIN_NAME:
            raise ValueError(f"chain name {name!r} is longer than {MAX_CHAIN_NAME} characters")
        return self.tables.setdefault(table, {}).setdefault(name, [])

    def add(self, table: str, name: str, *parts: str) -> None:
        """Append one rule: the non-empty parts joined by spaces."""
        self.chain(table, name).append(" ".join(part for part in parts if part))

    def chains(self, table: str) -> dict[str, list[str]]:
        return self.tables.get(table, {})

    def rule_count(self) -> int:
        return sum(len(rules) for chains in self.tables.values() for rules in chains.values())

    def render(self) -> str:
        """The whole ruleset as iptables-restore input."""
        return restore_text(self, None)


def _ordered_tables(*rulesets: Ruleset | None) -> list[str]:
    names: set[str] = set()
    for ruleset in rulesets:
        if ruleset is not None:
            names.update(ruleset.tables)
    return sorted(names, key=lambda t: (TABLE_ORDER.index(t) if t in TABLE_ORDER else 99, t))


def restore_text(
    current: Ruleset,
    previous: Ruleset | None,
    *,
    stale: Mapping[str, Iterable[str]] | None = None,
) -> str:
    """iptables-restore input taking the host from `previous` to `current`.

    With `previous` None every chain of `current` is written. `stale` names chains found on
    the host (by table) that belong to the component but are not in `current`: they are
    flushed and deleted as well. A table with nothing to change is left out; the empty
    string means nothing changes at all.
    """
    out: list[str] = []
    for table in _ordered_tables(current, previous):
        wanted = current.chains(table)
        before = previous.chains(table) if previous is not None else {}
        changed = [
            name for name, rules in wanted.items() if previous is None or before.get(name) != rules
        ]
        gone = [name for name in before if name not in wanted]
        for name in (stale or {}).get(table, ()):
            if name not in wanted and name not in gone:
                gone.append(name)
        if not changed and not gone:
            continue
        out.append(f"*{table}")
        out.extend(f":{name} - [0:0]" for name in changed)
        out.extend(f":{name} - [0:0]" for name in gone)
        for name in changed:
            out.extend(f"-A {name} {rule}" if rule else f"-A {name}" for rule in wanted[name])
        out.extend(f"-X {name}" for name in gone)
        out.append("COMMIT")
    return "\n".join(out) + "\n" if out else ""


def removal_text(found: Mapping[str, tuple[Iterable[str], Iterable[str]]]) -> str:
    """iptables-restore input that deletes, per table, the given rules (`-D` lines: the
    jumps into the chains) and then flushes and deletes the chains."""
    out: list[str] = []
    for table in sorted(found, key=lambda t: TABLE_ORDER.index(t) if t in TABLE_ORDER else 99):
        chains, deletions = (list(part) for part in found[table])
        if not chains and not deletions:
            continue
        out.append(f"*{table}")
        out.extend(f":{name} - [0:0]" for name in chains)
        out.extend(deletions)
        out.extend(f"-X {name}" for name in chains)
        out.append("COMMIT")
    return "\n".join(out) + "\n" if out else ""


def chains_in_save(text: str, owns: Callable[[str], bool]) -> dict[str, list[str]]:
    """The chains of iptables-save output that `owns` claims, by table."""
    found: dict[str, list[str]] = {}
    table = ""
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
        elif line.startswith(":") and table:
            name = line[1:].split(" ", 1)[0]
            if owns(name):
                found.setdefault(table, []).append(name)
    return found
