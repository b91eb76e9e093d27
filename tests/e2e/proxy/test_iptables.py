"""`RulesetApplier` against real iptables in a lab node namespace: partial updates, stale
chains, idempotent jumps, the canary, the jump that must stay first, removal."""

from __future__ import annotations

from tests.e2e.proxy.lab import Lab
from timonel.agent.proxy.iptables import RulesetApplier
from timonel.agent.proxy.ruleset import Jump, Ruleset

JUMPS = (
    Jump("nat", "PREROUTING", "TT-TOP", "test portals"),
    Jump("filter", "FORWARD", "TT-FWD", "test forwarding", ("-m", "conntrack", "--ctstate", "NEW")),
)


def owns(chain: str) -> bool:
    return chain.startswith("TT-")


def ruleset(*services: str) -> Ruleset:
    rules = Ruleset()
    rules.chain("filter", "TT-FWD")
    rules.add("filter", "TT-FWD", "-s 10.9.0.0/16 -j ACCEPT")
    for name in services:
        rules.add("nat", "TT-TOP", f"-d 10.96.0.{len(name)} -j TT-SVC-{name}")
        rules.add("nat", f"TT-SVC-{name}", "-j RETURN")
    rules.chain("nat", "TT-TOP")
    return rules


def chains(saved: str) -> set[str]:
    return {line[1:].split()[0] for line in saved.splitlines() if line.startswith(":TT-")}


async def test_apply_updates_only_what_changed_and_cleans_up(lab: Lab) -> None:
    iptables = lab.iptables
    applier = RulesetApplier(iptables, owns=owns, jumps=JUMPS, canary="TT-CANARY")
    first = await applier.apply(ruleset("a", "bb"))
    assert first.full and first.changed
    nat = await iptables.save("nat")
    assert chains(nat) == {"TT-TOP", "TT-SVC-a", "TT-SVC-bb", "TT-CANARY"}
    assert nat.count("-j TT-TOP") == 1

    again = await applier.apply(ruleset("a", "bb"))
    assert not again.changed

    fewer = await applier.apply(ruleset("a"))
    assert not fewer.full and fewer.changed
    # TT-TOP rewritten, TT-SVC-bb deleted; TT-SVC-a and the filter table untouched.
    assert fewer.lines == 6
    assert chains(await iptables.save("nat")) == {"TT-TOP", "TT-SVC-a", "TT-CANARY"}

    # A chain left behind by an earlier run is found and deleted by a full apply.
    await iptables.run("-t", "nat", "-N", "TT-SVC-leftover")
    await RulesetApplier(iptables, owns=owns, jumps=JUMPS, canary="TT-CANARY").apply(ruleset("a"))
    nat = await iptables.save("nat")
    assert "TT-SVC-leftover" not in nat
    assert nat.count("-j TT-TOP") == 1
    assert (await iptables.save("filter")).count("-j TT-FWD") == 1

    assert await applier.intact()
    await iptables.run("-t", "nat", "-X", "TT-CANARY")
    assert not await applier.intact()

    await applier.remove()
    for table in ("nat", "filter"):
        assert "TT-" not in await iptables.save(table)


async def test_a_first_jump_moves_back_to_the_top(lab: Lab) -> None:
    iptables = lab.iptables
    first = Jump("filter", "FORWARD", "TT-FIRST", first=True)
    rules = Ruleset()
    rules.add("filter", "TT-FIRST", "-j RETURN")
    applier = RulesetApplier(iptables, owns=owns, jumps=(first,), canary="TT-CANARY")
    await applier.apply(rules)
    await iptables.run("-t", "filter", "-I", "FORWARD", "1", "-s", "10.1.1.1", "-j", "ACCEPT")
    await applier.apply(rules)
    _, listing, _ = await iptables.run("-t", "filter", "-S", "FORWARD")
    appended = [line for line in listing.splitlines() if line.startswith("-A")]
    assert appended[0] == "-A FORWARD -j TT-FIRST"
    assert len(appended) == 2
    await applier.remove()
