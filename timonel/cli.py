"""The `timonel` command: `timonel server` and `timonel agent`; flags follow k3s."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys
from pathlib import Path


def _server_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "server", help="run the control plane (and a node agent unless disabled)"
    )
    parser.add_argument("--data-dir", type=Path, default=Path("/var/lib/timonel"))
    parser.add_argument("--bind-address", default="0.0.0.0")
    parser.add_argument("--https-listen-port", type=int, default=6443)
    parser.add_argument(
        "--datastore-endpoint",
        default="",
        help="sqlite:///path (default: under --data-dir), etcd://host:port[,host:port...] "
        "(etcd v3.4+, tried in order), or etcds://host:port,...?cacert=F&cert=F&key=F for TLS",
    )
    parser.add_argument("--write-kubeconfig", type=Path, default=None)
    parser.add_argument("--cluster-cidr", default="10.42.0.0/16")
    parser.add_argument("--service-cidr", default="10.43.0.0/16")
    parser.add_argument("--cluster-dns", default="10.43.0.10")
    parser.add_argument("--cluster-domain", default="cluster.local")
    parser.add_argument("--node-name", default="")
    parser.add_argument("--disable-agent", action="store_true")
    parser.add_argument(
        "--private-registry",
        type=Path,
        default=None,
        help="the node agent's registries file (default /etc/timonel/registries.yaml)",
    )
    parser.add_argument("--disable-scheduler", action="store_true")
    parser.add_argument("--disable-controller-manager", action="store_true")
    parser.add_argument(
        "--audit-log-path",
        default="",
        help="write audit events to this file ('-' for standard output)",
    )
    parser.add_argument(
        "--audit-log-maxage",
        type=int,
        default=0,
        help="days to keep rotated audit log files, by the time in their names (0: no limit)",
    )
    parser.add_argument(
        "--audit-log-maxbackup",
        type=int,
        default=0,
        help="rotated audit log files to keep (0: every one)",
    )
    parser.add_argument(
        "--audit-log-maxsize",
        type=int,
        default=0,
        help="megabytes the audit log may reach before it is rotated (0: 100)",
    )
    parser.add_argument(
        "--audit-policy-file",
        type=Path,
        default=None,
        help="the audit.k8s.io/v1 Policy that says what to audit and at which level",
    )
    parser.add_argument("--log-level", default="INFO")
    # kube-controller-manager's node monitoring periods, shortened by tests (hidden).
    parser.add_argument(
        "--node-monitor-grace-period", type=_seconds, default=None, help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--node-monitor-period", type=_seconds, default=None, help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--horizontal-pod-autoscaler-sync-period",
        type=_seconds,
        default=None,
        help=argparse.SUPPRESS,
    )


def _seconds(text: str) -> float:
    """A duration as kube flags take it ("40s", "500ms", "1m") or plain seconds."""
    for suffix, scale in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * scale
    return float(text)


def _agent_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("agent", help="run a node agent (or --simulate N simulated nodes)")
    parser.add_argument(
        "--server",
        default=os.environ.get("TIMONEL_URL", ""),
        help="the API server's URL, https://HOST:PORT (env TIMONEL_URL)",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("TIMONEL_TOKEN", ""),
        help="the node join token from the server's DATA_DIR/token (env TIMONEL_TOKEN)",
    )
    parser.add_argument("--data-dir", type=Path, default=Path("/var/lib/timonel"))
    parser.add_argument(
        "--node-name",
        default="",
        help="this node's name; with --simulate, the prefix of the nodes' names (default sim)",
    )
    parser.add_argument(
        "--node-ip",
        default="",
        help="the address this node advertises and serves on (default: the address of the default route)",
    )
    parser.add_argument(
        "--container-runtime-endpoint",
        default="",
        help="an existing CRI runtime (unix:///path.sock); by default the agent runs its own containerd",
    )
    parser.add_argument(
        "--private-registry",
        type=Path,
        default=Path("/etc/timonel/registries.yaml"),
        help="registry mirrors, plain-HTTP registries and credentials (k3s registries.yaml format)",
    )
    parser.add_argument(
        "--simulate",
        type=int,
        default=None,
        metavar="N",
        help="run N simulated nodes (sim-0 .. sim-N-1) instead of a real node",
    )
    parser.add_argument(
        "--simulate-config",
        type=Path,
        default=None,
        metavar="FILE",
        help="YAML: capacity, labels, taints, address ranges, periods, stages",
    )
    parser.add_argument(
        "--simulate-capacity",
        default="",
        metavar="cpu=32,memory=256Gi,...",
        help="the simulated nodes' capacity (and allocatable)",
    )
    parser.add_argument(
        "--simulate-label",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra label on every simulated node (repeatable)",
    )
    parser.add_argument(
        "--simulate-taint",
        action="append",
        default=[],
        metavar="KEY[=VALUE]:EFFECT",
        help="a taint every simulated node registers with (repeatable)",
    )
    parser.add_argument("--log-level", default="INFO")
    # How often the node renews its Lease (the kubelet's 10 s), shortened by tests (hidden).
    parser.add_argument("--heartbeat-period", type=_seconds, default=None, help=argparse.SUPPRESS)


def _run_node_agent(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if not args.server or not args.token:
        parser.error("agent: --server and --token are required")
    from timonel.agent.kubelet.process import import_http_client

    import_http_client()  # first, and without the system CA bundle (see there)
    from timonel.agent.join import UntrustedServer
    from timonel.agent.kubelet.agent import AgentOptions, run_agent

    options = AgentOptions(
        node_name=args.node_name or socket.gethostname().lower(),
        data_dir=args.data_dir,
        container_runtime_endpoint=args.container_runtime_endpoint,
        private_registry=args.private_registry,
        node_ip=args.node_ip,
    )
    if args.heartbeat_period is not None:
        options.heartbeat_period = args.heartbeat_period
    try:
        asyncio.run(run_agent(args.server, args.token.strip(), options))
    except UntrustedServer as exc:
        print(f"timonel agent: {exc}", file=sys.stderr)
        return 1
    return 0


def _run_agent(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.simulate is None:
        return _run_node_agent(parser, args)
    if args.simulate < 1:
        parser.error("--simulate: N must be at least 1")
    if not args.server or not args.token:
        parser.error("agent: --server and --token are required")
    from timonel.agent.simulate.agent import SimulateOptions, run_simulated_agent
    from timonel.agent.simulate.config import ConfigError, SimulateConfig, load_config, with_flags
    from timonel.agent.simulate.connect import UntrustedServer

    try:
        config = SimulateConfig()
        if args.simulate_config is not None:
            config = load_config(args.simulate_config.read_text())
        config = with_flags(
            config,
            capacity=args.simulate_capacity,
            labels=args.simulate_label,
            taints=args.simulate_taint,
        )
    except (OSError, ConfigError) as exc:
        parser.error(f"simulated nodes: {exc}")
    options = SimulateOptions(
        server=args.server,
        token=args.token.strip(),
        count=args.simulate,
        data_dir=args.data_dir,
        node_name_prefix=args.node_name or "sim",
        config=config,
    )
    try:
        asyncio.run(run_simulated_agent(options))
    except UntrustedServer as exc:
        print(f"timonel agent: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="timonel", description="A Kubernetes-compatible orchestrator."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _server_parser(sub)
    _agent_parser(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.command == "server":
        from timonel.apiserver.auditfile import Rotation
        from timonel.server import ServerOptions, serve

        options = ServerOptions(
            data_dir=args.data_dir,
            bind_address=args.bind_address,
            https_listen_port=args.https_listen_port,
            datastore_endpoint=args.datastore_endpoint,
            write_kubeconfig=args.write_kubeconfig,
            cluster_cidr=args.cluster_cidr,
            service_cidr=args.service_cidr,
            cluster_dns=args.cluster_dns,
            cluster_domain=args.cluster_domain,
            node_name=args.node_name,
            disable_agent=args.disable_agent,
            private_registry=args.private_registry,
            disable_scheduler=args.disable_scheduler,
            disable_controller_manager=args.disable_controller_manager,
            audit_log_path=args.audit_log_path,
            audit_policy_file=args.audit_policy_file,
            audit_log_rotation=Rotation(
                max_size_mb=args.audit_log_maxsize,
                max_backups=args.audit_log_maxbackup,
                max_age_days=args.audit_log_maxage,
            ),
            controller_options={
                name: value
                for name in (
                    "node_monitor_grace_period",
                    "node_monitor_period",
                    "horizontal_pod_autoscaler_sync_period",
                )
                if (value := getattr(args, name)) is not None
            },
        )
        asyncio.run(serve(options))
        return 0
    if args.command == "agent":
        return _run_agent(sub.choices["agent"], args)
    parser.error(f"unknown command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
