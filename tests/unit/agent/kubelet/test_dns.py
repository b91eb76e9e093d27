"""Pod DNS configuration and the managed /etc/hosts."""

from __future__ import annotations

from tests.unit.agent.kubelet.podfixtures import make_pod
from timonel.agent.kubelet.dns import (
    ClusterDns,
    host_network_hosts_file,
    hosts_file,
    parse_resolv_conf,
    pod_dns_config,
    sandbox_hostname,
)

HOST = parse_resolv_conf(
    "nameserver 1.1.1.1\nnameserver 8.8.8.8\nsearch corp.example\noptions edns0\n"
)
CLUSTER = ClusterDns(servers=("10.43.0.10",), domain="cluster.local", host=HOST)


def test_cluster_first_uses_the_cluster_dns_and_search_path() -> None:
    dns = pod_dns_config(make_pod(), CLUSTER)
    assert dns.servers == ("10.43.0.10",)
    assert dns.searches == (
        "ns.svc.cluster.local",
        "svc.cluster.local",
        "cluster.local",
        "corp.example",
    )
    assert dns.options == ("ndots:5",)


def test_host_network_pods_use_the_host_resolver_unless_they_ask_for_the_cluster() -> None:
    assert pod_dns_config(make_pod(hostNetwork=True), CLUSTER).servers == ("1.1.1.1", "8.8.8.8")
    asking = make_pod(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet")
    assert pod_dns_config(asking, CLUSTER).servers == ("10.43.0.10",)
    assert pod_dns_config(make_pod(dnsPolicy="Default"), CLUSTER).options == ("edns0",)


def test_dns_config_is_merged_and_none_uses_only_it() -> None:
    pod = make_pod(
        dnsConfig={
            "nameservers": ["9.9.9.9"],
            "searches": ["extra.example", "svc.cluster.local"],
            "options": [{"name": "ndots", "value": "2"}, {"name": "rotate"}],
        }
    )
    dns = pod_dns_config(pod, CLUSTER)
    assert dns.servers == ("10.43.0.10", "9.9.9.9")
    assert dns.searches[-1] == "extra.example" and dns.searches.count("svc.cluster.local") == 1
    assert dns.options == ("ndots:2", "rotate")
    none = make_pod(dnsPolicy="None", dnsConfig={"nameservers": ["1.2.3.4"]})
    assert pod_dns_config(none, CLUSTER).servers == ("1.2.3.4",)
    assert pod_dns_config(none, CLUSTER).searches == ()


def test_at_most_three_nameservers() -> None:
    pod = make_pod(
        dnsPolicy="None", dnsConfig={"nameservers": ["1.0.0.1", "1.0.0.2", "1.0.0.3", "1.0.0.4"]}
    )
    assert len(pod_dns_config(pod, CLUSTER).servers) == 3


def test_hosts_file_names_the_pod_and_its_aliases() -> None:
    pod = make_pod(
        hostname="web-0", subdomain="web", hostAliases=[{"ip": "1.2.3.4", "hostnames": ["a", "b"]}]
    )
    text = hosts_file(pod, ["10.1.0.5"], "cluster.local")
    assert text.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")
    assert "10.1.0.5\tweb-0.web.ns.svc.cluster.local\tweb-0\n" in text
    assert text.endswith("\n# Entries added by HostAliases.\n1.2.3.4\ta\tb\n")
    plain = hosts_file(make_pod(), ["10.1.0.5"], "cluster.local")
    assert plain.endswith("10.1.0.5\tp\n")
    host = host_network_hosts_file(make_pod(hostNetwork=True), "127.0.0.1 localhost")
    assert host == "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n"


def test_sandbox_hostname() -> None:
    assert sandbox_hostname(make_pod(), "cluster.local") == "p"
    assert sandbox_hostname(make_pod(hostNetwork=True), "cluster.local") == ""
    fqdn = make_pod(hostname="h", subdomain="s", setHostnameAsFQDN=True)
    assert sandbox_hostname(fqdn, "cluster.local") == "h.s.ns.svc.cluster.local"


def test_resolv_conf_is_read_as_kubelet_reads_it() -> None:
    host = parse_resolv_conf(
        "domain ignored.example\n"
        "search first.example\n"
        "search corp.example. . lab.example\n"
        "options ndots:2 timeout:1\n"
        "options ndots:3 rotate\n"
    )
    assert host.searches == ("corp.example", "lab.example")
    assert host.options == ("ndots:3", "timeout:1", "rotate")
    empty_value = make_pod(dnsConfig={"options": [{"name": "edns0", "value": ""}]})
    assert pod_dns_config(empty_value, CLUSTER).options == ("ndots:5", "edns0")
    too_long = make_pod(dnsConfig={"searches": ["a" * 254, "ok.example"]})
    assert pod_dns_config(too_long, CLUSTER).searches[-1] == "ok.example"
    assert "a" * 254 not in pod_dns_config(too_long, CLUSTER).searches
    no_domain = ClusterDns(servers=("10.43.0.10",), domain="", host=HOST)
    assert pod_dns_config(make_pod(), no_domain).searches == ("corp.example",)
