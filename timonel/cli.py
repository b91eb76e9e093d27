"""The `timonel` command: `timonel server` and (later) `timonel agent`; flags follow k3s."""

from __future__ import annotations

import argparse
import asyncio
import logging
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
        "--datastore-endpoint", default="", help="sqlite:///path (default under --data-dir)"
    )
    parser.add_argument("--write-kubeconfig", type=Path, default=None)
    parser.add_argument("--cluster-cidr", default="10.42.0.0/16")
    parser.add_argument("--service-cidr", default="10.43.0.0/16")
    parser.add_argument("--cluster-dns", default="10.43.0.10")
    parser.add_argument("--cluster-domain", default="cluster.local")
    parser.add_argument("--node-name", default="")
    parser.add_argument("--disable-agent", action="store_true")
    parser.add_argument("--log-level", default="INFO")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="timonel", description="A Kubernetes-compatible orchestrator."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _server_parser(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.command == "server":
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
        )
        asyncio.run(serve(options))
        return 0
    parser.error(f"unknown command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
