"""Usage rates and the kubelet Summary document."""

from __future__ import annotations

from timonel.agent.kubelet import stats
from timonel.agent.kubelet.stats import ContainerUsage, Usage, UsageRates

SECOND = 1_000_000_000


def test_a_rate_needs_an_earlier_sample() -> None:
    rates = UsageRates()
    assert rates.observe("c", 10 * SECOND, 5 * SECOND) is None
    # Half a core over two seconds.
    assert rates.observe("c", 12 * SECOND, 6 * SECOND) == (500_000_000, 2 * SECOND)


def test_the_window_is_the_newest_sample_at_least_the_minimum_older() -> None:
    rates = UsageRates(min_window_ns=SECOND)
    rates.observe("c", 0, 0)
    rates.observe("c", 10 * SECOND, 10 * SECOND)  # one core
    # 0.5 s later: the 10 s sample is too recent, the first one is used.
    rate = rates.observe("c", 10 * SECOND + SECOND // 2, 10 * SECOND + SECOND // 4)
    assert rate == (
        (10 * SECOND + SECOND // 4) * SECOND // (10 * SECOND + SECOND // 2),
        10_500_000_000,
    )
    # 2 s after the second sample: measured against it.
    assert rates.observe("c", 12 * SECOND, 10 * SECOND + SECOND // 2) == (250_000_000, 2 * SECOND)


def test_a_counter_going_backwards_has_no_rate_and_old_keys_are_forgotten() -> None:
    rates = UsageRates()
    rates.observe("c", 0, 100 * SECOND)
    assert rates.observe("c", 5 * SECOND, SECOND) is None
    rates.observe("gone", 0, 0)
    rates.retain(["c"])
    assert rates.observe("gone", 5 * SECOND, SECOND) is None


def test_old_samples_are_pruned() -> None:
    rates = UsageRates(min_window_ns=SECOND, keep_ns=10 * SECOND)
    for second in range(100):
        rates.observe("c", second * SECOND, second * SECOND)
    assert len(rates._samples["c"]) <= 12


def test_node_cpu_and_memory_come_from_proc() -> None:
    stat = "cpu  100 20 30 1000 50 5 5 10 0 0\ncpu0 1 2 3 4\nintr 1\n"
    # user+nice+system+irq+softirq+steal = 170 ticks of 1/100 s.
    assert stats.parse_proc_stat_cpu(stat, 100) == 1_700_000_000
    memory = stats.parse_meminfo("MemTotal:  1000 kB\nMemFree: 200 kB\nHugePages_Total: 0\n")
    assert memory == {"MemTotal": 1_024_000, "MemFree": 204_800, "HugePages_Total": 0}


def test_without_a_rate_the_average_since_start_is_reported() -> None:
    sample = Usage(time_ns=20 * SECOND, cpu_core_ns=5 * SECOND)
    assert stats.with_rate(sample, None, 10 * SECOND).cpu_nano_cores == 500_000_000
    assert stats.with_rate(sample, (7, SECOND), 10 * SECOND).cpu_nano_cores == 7
    assert stats.with_rate(Usage(time_ns=1), None, 0).cpu_nano_cores is None


def _container(pod: str, name: str, cpu: int, memory: int) -> ContainerUsage:
    return ContainerUsage(
        pod_uid=f"uid-{pod}",
        pod_name=pod,
        pod_namespace="default",
        name=name,
        started_ns=1000 * SECOND,
        usage=Usage(
            time_ns=1010 * SECOND,
            cpu_core_ns=cpu * 10,
            cpu_nano_cores=cpu,
            memory_working_set=memory,
        ),
    )


def test_the_summary_groups_containers_by_pod_and_sums_them() -> None:
    node = Usage(
        time_ns=1010 * SECOND,
        cpu_core_ns=99,
        cpu_nano_cores=1_500_000_000,
        memory_working_set=2048,
        memory_available=4096,
    )
    summary = stats.render_summary(
        "node-1",
        0,
        node,
        [
            _container("web", "sidecar", 1_000_000, 4096),
            _container("web", "app", 2_000_000, 8192),
            _container("db", "postgres", 5, 1),
        ],
    )
    assert summary["node"]["nodeName"] == "node-1"
    assert summary["node"]["cpu"]["usageNanoCores"] == 1_500_000_000
    assert summary["node"]["memory"] == {
        "time": "1970-01-01T00:16:50Z",
        "availableBytes": 4096,
        "workingSetBytes": 2048,
    }
    assert [p["podRef"]["name"] for p in summary["pods"]] == ["db", "web"]
    web = summary["pods"][1]
    assert web["podRef"] == {"name": "web", "namespace": "default", "uid": "uid-web"}
    assert [c["name"] for c in web["containers"]] == ["app", "sidecar"]
    assert web["containers"][0]["cpu"]["usageNanoCores"] == 2_000_000
    assert web["containers"][0]["memory"]["workingSetBytes"] == 8192
    assert web["cpu"]["usageNanoCores"] == 3_000_000
    assert web["memory"]["workingSetBytes"] == 12288
