"""Turn a request path into what it addresses, as kube-apiserver's RequestInfoFactory does.

    /api/v1/namespaces/default/pods/web/status
         └┬┘         └──┬──┘ └┬─┘ └┬┘ └──┬─┘
       version      namespace  resource name subresource

`namespaces` itself is a resource: /api/v1/namespaces/default is the namespace "default",
and /api/v1/namespaces/default/status its status subresource.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestInfo:
    is_resource: bool
    path: str
    verb: str  # get list watch create update patch delete deletecollection, or the HTTP method
    group: str = ""
    version: str = ""
    namespace: str = ""
    resource: str = ""
    name: str = ""
    subresource: str = ""
    parts: tuple[str, ...] = ()


_WATCH_TRUE = ("1", "true", "True")

# Requests repeat the same few paths (a node renews its own Lease, a controller reads the
# same objects): the parsed, immutable answers are kept, up to a bound, for paths of
# ordinary length.
_PARSED_LIMIT = 32768
_PARSED_PATH_LIMIT = 256
_parsed: dict[tuple[str, str, bool], RequestInfo] = {}


def parse_request_info(method: str, path: str, query_watch: str | None) -> RequestInfo:
    key = (method, path, query_watch in _WATCH_TRUE)
    info = _parsed.get(key)
    if info is None:
        info = _parse(method, path, key[2])
        if len(path) > _PARSED_PATH_LIMIT:
            return info
        if len(_parsed) >= _PARSED_LIMIT:
            _parsed.clear()
        _parsed[key] = info
    return info


def _parse(method: str, path: str, watch: bool) -> RequestInfo:
    method_verb = method.lower()
    segments = tuple(s for s in path.strip("/").split("/") if s)
    if not segments or segments[0] not in ("api", "apis"):
        return RequestInfo(False, path, method_verb)
    if segments[0] == "api":
        group, rest = "", segments[1:]
    else:
        if len(segments) < 2:
            return RequestInfo(False, path, method_verb)
        group, rest = segments[1], segments[2:]
    if not rest:
        return RequestInfo(False, path, method_verb, group=group)
    version, rest = rest[0], rest[1:]
    if not rest:
        return RequestInfo(False, path, method_verb, group=group, version=version)

    namespace = ""
    if (
        rest[0] == "namespaces"
        and len(rest) > 1
        and not (len(rest) == 2 or rest[2] in ("status", "finalize"))
    ):
        namespace, rest = rest[1], rest[2:]
    elif rest[0] == "namespaces" and len(rest) >= 2:
        # The namespace object itself (and its subresources).
        pass
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    extra = rest[3:]

    if method_verb == "get":
        verb = "get" if name else "watch" if watch else "list"
    elif method_verb == "post":
        verb = "create"
    elif method_verb == "put":
        verb = "update"
    elif method_verb == "patch":
        verb = "patch"
    elif method_verb == "delete":
        verb = "delete" if name else "deletecollection"
    else:
        verb = method_verb
    return RequestInfo(
        True,
        path,
        verb,
        group=group,
        version=version,
        namespace=namespace,
        resource=resource,
        name=name,
        subresource=subresource,
        parts=tuple(extra),
    )
