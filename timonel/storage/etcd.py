"""The etcd datastore: the `Storage` protocol over etcd v3, spoken through its gRPC-JSON
gateway (plain HTTP POSTs of JSON documents under `/v3/`, keys and values in base64).

Keys are stored as given (`/registry/...`); revisions are etcd's own: the cluster-wide
revision is the store revision, and an object's `mod_revision` is etcd's. A fresh etcd
starts at revision 1, so the first write gets revision 2, as with SQLite.

Writes. Each write is one transaction with a revision comparison, so etcd itself refuses
a write based on a stale read: create compares `create_revision == 0`, update and delete
compare `mod_revision` with the expected one. The failure branch reads the key, which
tells a missing key from a moved one without a second round trip.

Watch. One etcd watch over the whole keyspace (with previous values) feeds every
`watch()` in this process, which filters by prefix, as the SQLite store fans out its own
commits. Because that stream sees every revision, it knows how far each prefix is
complete, which gives progress notices for free. A watch starting behind the stream
replays first from a short in-memory history of recent events, or else from a
catch-up etcd watch of the whole keyspace read until it reaches the stream. A watcher
that falls more than its queue behind is ended with `WatchDropped`. When the stream
breaks (etcd restarting, another endpoint taking over) it resumes from the last revision
it delivered; watchers notice nothing but the delay. The `decoded` objects of this
process's writes reach the events of those writes by key and value while the write is in
flight, or by revision once it was answered, whichever comes first.

Compaction. etcd keeps revision R readable after compacting at R, which is what
`compacted_revision()` reports. etcd does not say which revision it last compacted, so
that is learnt from this process's own compactions and, when another client compacted
since, found by probing which revisions are still readable.

Endpoints: `etcd://host:port,host:port` (plain HTTP), `etcds://...` (HTTPS), or
comma-separated `http://` / `https://` URLs as k3s takes them. HTTPS options go in the
query: `?cacert=FILE&cert=FILE&key=FILE` (server CA, client certificate and key). A
request that could not connect is tried on the next endpoint; a read is also retried
there after a broken connection, a write is not (it may have been applied).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import ssl
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import aiohttp
import orjson

from timonel.storage.fanout import Subscribers, progress_event
from timonel.storage.interface import (
    Compacted,
    EventType,
    FutureRevision,
    KeyExists,
    KeyNotFound,
    KeyValue,
    ListResult,
    RevisionMismatch,
    StorageError,
    WatchEvent,
    prefix_end,
)

log = logging.getLogger(__name__)

DEFAULT_PORT: Final = 2379
# Recent events kept for watches that start a little behind the shared stream.
HISTORY_EVENTS: Final = 1000
# etcd's encoding of "every key": key and range end both the zero byte.
_ALL_KEYS: Final = "\x00"
_COMPACTED_MESSAGE: Final = "required revision has been compacted"
_FUTURE_MESSAGE: Final = "required revision is a future revision"
_RETRY_MIN: Final = 0.05
_RETRY_MAX: Final = 2.0


# A batch of watch events (named so that `EtcdStorage.list` does not shadow the builtin).
Events = list[WatchEvent]


class EtcdError(StorageError):
    """etcd answered with an error (or could not be reached)."""


# --- endpoints -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EtcdEndpoints:
    urls: tuple[str, ...]  # base URLs, e.g. "http://127.0.0.1:2379"
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    @property
    def tls(self) -> bool:
        return self.urls[0].startswith("https://")


def parse_endpoint(endpoint: str) -> EtcdEndpoints:
    """`etcd://h1:p1,h2:p2`, `etcds://...?cacert=..&cert=..&key=..`, or comma-separated
    http(s):// URLs. A host without a port gets etcd's 2379."""
    scheme, separator, rest = endpoint.partition("://")
    if not separator:
        raise ValueError(f"not an etcd endpoint: {endpoint!r}")
    hosts_part, _, query = rest.partition("?")
    options = {name: values[-1] for name, values in parse_qs(query).items()}
    unknown = set(options) - {"cacert", "cert", "key"}
    if unknown:
        raise ValueError(f"unknown etcd endpoint options: {', '.join(sorted(unknown))}")
    if scheme in ("etcd", "etcds"):
        secure = scheme == "etcds"
        hosts = [host.strip() for host in hosts_part.split(",")]
    elif scheme in ("http", "https"):
        # k3s form: every element a URL of its own.
        urls = [url.strip() for url in endpoint.partition("?")[0].split(",")]
        schemes = {url.partition("://")[0] for url in urls}
        if len(schemes) != 1 or not all("://" in url for url in urls):
            raise ValueError(f"mixed or missing URL schemes in {endpoint!r}")
        secure = scheme == "https"
        hosts = [url.partition("://")[2].rstrip("/") for url in urls]
    else:
        raise ValueError(f"not an etcd endpoint: {endpoint!r}")
    if not hosts or any(not host or "/" in host for host in hosts):
        raise ValueError(f"etcd endpoint needs host:port[,host:port...]: {endpoint!r}")
    base = "https" if secure else "http"
    if options and not secure:
        raise ValueError(f"TLS options need etcds:// or https:// in {endpoint!r}")
    return EtcdEndpoints(
        tuple(f"{base}://{_with_port(host)}" for host in hosts),
        options.get("cacert"),
        options.get("cert"),
        options.get("key"),
    )


def _with_port(host: str) -> str:
    parts = urlsplit(f"//{host}")
    if parts.port is not None:
        return host
    return f"{host}:{DEFAULT_PORT}"


def is_etcd_endpoint(endpoint: str) -> bool:
    return endpoint.partition("://")[0] in ("etcd", "etcds", "http", "https")


# --- JSON encoding ---------------------------------------------------------------------


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _b64_bytes(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(data: str | None) -> bytes:
    return base64.b64decode(data) if data else b""


def _range_end(prefix: str) -> str:
    end = prefix_end(prefix)
    return _b64(_ALL_KEYS if end is None else end)


def key_value(document: dict[str, Any]) -> KeyValue:
    """A KeyValue from etcd's JSON (int64 fields arrive as strings, zero fields absent)."""
    return KeyValue(
        _unb64(document.get("key")).decode(),
        _unb64(document.get("value")),
        int(document.get("create_revision", 0)),
        int(document.get("mod_revision", 0)),
    )


def watch_events(result: dict[str, Any]) -> list[WatchEvent]:
    """The events of one watch response, in the protocol's terms: a DELETE carries the
    value the key held, taken from the previous value etcd sends along."""
    events: list[WatchEvent] = []
    for event in result.get("events", ()):
        kv = key_value(event["kv"])
        prev_document = event.get("prev_kv")
        prev = key_value(prev_document) if prev_document else None
        if event.get("type") == "DELETE":
            deleted = KeyValue(
                kv.key,
                prev.value if prev else b"",
                prev.create_revision if prev else 0,
                kv.mod_revision,
            )
            events.append(WatchEvent(EventType.DELETE, deleted, prev))
        else:
            created = kv.create_revision == kv.mod_revision
            events.append(WatchEvent(EventType.PUT, kv, None if created else prev))
    return events


def _watch_request(start_revision: int) -> bytes:
    return orjson.dumps(
        {
            "create_request": {
                "key": _b64(_ALL_KEYS),
                "range_end": _b64(_ALL_KEYS),
                "start_revision": start_revision,
                "prev_kv": True,
            }
        }
    )


def _error_message(document: Any) -> str | None:
    if isinstance(document, dict) and "error" in document:
        error = document["error"]
        if isinstance(error, dict):  # a streamed error: {"error": {"message": ...}}
            return str(error.get("message", error))
        return str(document.get("message") or error)
    return None


# --- the HTTP side -----------------------------------------------------------------------


class _Gateway:
    """POSTs to the gateway, moving to the next endpoint when one cannot be reached."""

    def __init__(self, endpoints: EtcdEndpoints, timeout: float) -> None:
        self._endpoints = endpoints
        self._timeout = timeout
        self._current = 0
        self._session: aiohttp.ClientSession | None = None

    def open(self) -> None:
        context: ssl.SSLContext | bool = True
        if self._endpoints.tls:
            context = ssl.create_default_context(cafile=self._endpoints.ca_file)
            if self._endpoints.cert_file:
                context.load_cert_chain(self._endpoints.cert_file, self._endpoints.key_file)
        connector = aiohttp.TCPConnector(limit=0, ssl=context)
        self._session = aiohttp.ClientSession(connector=connector)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise StorageError("etcd storage is not started")
        return self._session

    async def call(self, path: str, body: dict[str, Any], *, idempotent: bool) -> dict[str, Any]:
        """The JSON answer of POST /v3/`path`. Requests that were never sent (connection
        refused) move on to the next endpoint; reads also retry after a broken
        connection, writes do not (they may have been applied)."""
        payload = orjson.dumps(body)
        urls = self._endpoints.urls
        last_error: BaseException | None = None
        for attempt in range(len(urls)):
            index = (self._current + attempt) % len(urls)
            try:
                async with self.session.post(
                    f"{urls[index]}/v3/{path}",
                    data=payload,
                    headers={"Content-Type": "application/json"},
                    timeout=aiohttp.ClientTimeout(total=self._timeout),
                ) as response:
                    raw = await response.read()
            except aiohttp.ClientConnectorError as error:
                last_error = error
                continue
            except (aiohttp.ClientError, TimeoutError) as error:
                if not idempotent:
                    raise EtcdError(f"etcd {path} at {urls[index]}: {error!r}") from error
                last_error = error
                continue
            self._current = index
            try:
                document = orjson.loads(raw)
            except orjson.JSONDecodeError as error:
                raise EtcdError(f"etcd {path}: HTTP {response.status}: {raw[:200]!r}") from error
            message = _error_message(document)
            if message is not None:
                raise _classify(message)
            if response.status != 200:
                raise EtcdError(f"etcd {path}: HTTP {response.status}: {raw[:200]!r}")
            return dict(document)
        raise EtcdError(f"no etcd endpoint reachable ({', '.join(urls)}): {last_error}")

    @contextlib.asynccontextmanager
    async def stream(self, path: str, body: bytes) -> AsyncIterator[aiohttp.StreamReader]:
        """The body of a streaming POST (one JSON document a line), on the first endpoint
        that answers."""
        urls = self._endpoints.urls
        last_error: BaseException | None = None
        for attempt in range(len(urls)):
            index = (self._current + attempt) % len(urls)
            try:
                response = await self.session.post(
                    f"{urls[index]}/v3/{path}",
                    data=body,
                    headers={"Content-Type": "application/json"},
                    timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._timeout),
                )
            except aiohttp.ClientError as error:
                last_error = error
                continue
            self._current = index
            try:
                if response.status != 200:
                    raw = await response.read()
                    raise _classify(_error_message(_loads(raw)) or f"HTTP {response.status}")
                yield response.content
            finally:
                response.close()
            return
        raise EtcdError(f"no etcd endpoint reachable ({', '.join(urls)}): {last_error}")


def _loads(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


class _RevisionError(EtcdError):
    """A read or compaction named a revision etcd no longer has, or does not have yet."""

    def __init__(self, message: str, *, compacted: bool) -> None:
        super().__init__(message)
        self.compacted = compacted


def _classify(message: str) -> EtcdError:
    if _COMPACTED_MESSAGE in message:
        return _RevisionError(message, compacted=True)
    if _FUTURE_MESSAGE in message:
        return _RevisionError(message, compacted=False)
    return EtcdError(f"etcd: {message}")


async def _watch_results(lines: aiohttp.StreamReader) -> AsyncIterator[dict[str, Any]]:
    """The `result` of each message of a watch stream; raises on a streamed error."""
    while True:
        line = await lines.readline()
        if not line:
            return
        if not line.strip():
            continue
        document = orjson.loads(line)
        message = _error_message(document)
        if message is not None:
            raise _classify(message)
        yield document.get("result", {})


# --- the store -------------------------------------------------------------------------


class EtcdStorage:
    """The `Storage` protocol over an etcd v3 cluster (see the module docstring)."""

    def __init__(
        self,
        endpoint: str | EtcdEndpoints,
        *,
        compact_interval: float = 300.0,
        compact_keep: int = 1000,
        watcher_queue: int = 10_000,
        history_events: int = HISTORY_EVENTS,
        request_timeout: float = 30.0,
    ) -> None:
        self.endpoints = parse_endpoint(endpoint) if isinstance(endpoint, str) else endpoint
        self._gateway = _Gateway(self.endpoints, request_timeout)
        self._compact_interval = compact_interval
        self._compact_keep = compact_keep
        self._closed = False
        self._started = False
        # The shared stream has handed every event up to `_position` to subscribers;
        # `_history` holds the newest of them, complete above `_history_floor`.
        self._position = 0
        self._history: deque[WatchEvent] = deque()
        self._history_events = history_events
        self._history_floor = 0
        self._subscribers = Subscribers(watcher_queue, lambda: self._position)
        self._compacted = 0
        # What this process's writes encode, for the events of those writes: while a
        # write is in flight, by key (its event may come before its answer), and after it
        # was answered, by revision until its event comes.
        self._writing: dict[str, tuple[bytes, Any]] = {}
        self._decoded: dict[int, tuple[str, Any]] = {}
        self._stream_live = asyncio.Event()
        self._follower: asyncio.Task[None] | None = None
        self._compactor: asyncio.Task[None] | None = None

    # --- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            raise StorageError("storage already started")
        self._started = True
        self._gateway.open()
        try:
            revision = await self.current_revision()
        except BaseException:
            self._closed = True
            await self._gateway.close()
            raise
        self._position = revision
        self._history_floor = revision
        self._follower = asyncio.create_task(self._follow(), name="etcd watch")
        try:
            async with asyncio.timeout(30):
                await self._stream_live.wait()
        except TimeoutError:
            await self.close()
            raise EtcdError(f"no watch on etcd ({', '.join(self.endpoints.urls)})") from None
        except BaseException:
            await self.close()
            raise
        if self._compact_interval > 0:
            self._compactor = asyncio.create_task(self._compact_periodically(), name="etcd compact")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for task in (self._compactor, self._follower):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._subscribers.end_all()
        await self._gateway.close()

    def _check_open(self) -> None:
        if self._closed or not self._started:
            raise StorageError("storage is closed" if self._closed else "storage not started")

    # --- reads -----------------------------------------------------------------------

    async def _read(self, body: dict[str, Any], revision: int) -> dict[str, Any]:
        self._check_open()
        try:
            return await self._gateway.call("kv/range", body, idempotent=True)
        except _RevisionError as error:
            if error.compacted:
                raise Compacted(revision, await self.compacted_revision()) from None
            raise FutureRevision(revision, await self.current_revision()) from None

    async def current_revision(self) -> int:
        if not self._started:
            raise StorageError("storage not started")
        # A linearizable read of one key that never exists: its header is the revision.
        answer = await self._gateway.call(
            "kv/range", {"key": _b64(_ALL_KEYS), "count_only": True}, idempotent=True
        )
        return int(answer["header"]["revision"])

    async def get(self, key: str, *, revision: int = 0) -> KeyValue | None:
        answer = await self._read({"key": _b64(key), "revision": revision}, revision)
        kvs = answer.get("kvs")
        return key_value(kvs[0]) if kvs else None

    async def list(
        self, prefix: str, *, revision: int = 0, start_key: str = "", limit: int = 0
    ) -> ListResult:
        body: dict[str, Any] = {
            "key": _b64(max(prefix, start_key) or _ALL_KEYS),
            "range_end": _range_end(prefix),
            "revision": revision,
        }
        if limit > 0:
            body["limit"] = limit
        answer = await self._read(body, revision)
        items = [key_value(document) for document in answer.get("kvs", ())]
        return ListResult(
            items=items,
            revision=revision or int(answer["header"]["revision"]),
            more=bool(answer.get("more", False)),
        )

    async def count(self, prefix: str) -> int:
        body = {
            "key": _b64(prefix or _ALL_KEYS),
            "range_end": _range_end(prefix),
            "count_only": True,
        }
        answer = await self._read(body, 0)
        return int(answer.get("count", 0))

    # --- writes ----------------------------------------------------------------------

    async def _transact(
        self,
        key: str,
        compare: dict[str, Any],
        operation: dict[str, Any],
        writing: tuple[bytes, Any] | None = None,
    ) -> tuple[bool, int, dict[str, Any]]:
        """(succeeded, revision, the first response of the branch taken). `writing` is
        the value written and what it encodes."""
        self._check_open()
        encoded = _b64(key)
        if writing is not None and writing[1] is not None:
            self._writing[key] = writing
        try:
            answer = await self._gateway.call(
                "kv/txn",
                {
                    "compare": [{"key": encoded, **compare}],
                    "success": [operation],
                    "failure": [{"request_range": {"key": encoded}}],
                },
                idempotent=False,
            )
        finally:
            if writing is not None and self._writing.get(key) is writing:
                del self._writing[key]
        responses = answer.get("responses") or [{}]
        return (
            bool(answer.get("succeeded", False)),
            int(answer["header"]["revision"]),
            responses[0],
        )

    def _remember_decoded(self, key: str, revision: int, decoded: Any) -> None:
        # Only when the shared stream has not passed this write yet: its event takes it.
        if decoded is not None and revision > self._position:
            self._decoded[revision] = (key, decoded)

    async def create(self, key: str, value: bytes, *, decoded: Any = None) -> KeyValue:
        succeeded, revision, _ = await self._transact(
            key,
            {"target": "CREATE", "result": "EQUAL", "create_revision": 0},
            {"request_put": {"key": _b64(key), "value": _b64_bytes(value)}},
            (value, decoded),
        )
        if not succeeded:
            raise KeyExists(key)
        self._remember_decoded(key, revision, decoded)
        return KeyValue(key, value, revision, revision)

    def _refusal(self, key: str, expected_revision: int, failure: dict[str, Any]) -> StorageError:
        kvs = failure.get("response_range", {}).get("kvs")
        if not kvs:
            return KeyNotFound(key)
        return RevisionMismatch(key, expected_revision, key_value(kvs[0]).mod_revision)

    @staticmethod
    def _expected(expected_revision: int) -> dict[str, Any]:
        if expected_revision:
            return {"target": "MOD", "result": "EQUAL", "mod_revision": expected_revision}
        return {"target": "MOD", "result": "GREATER", "mod_revision": 0}  # the key is live

    async def update(
        self, key: str, value: bytes, *, expected_revision: int, decoded: Any = None
    ) -> KeyValue:
        succeeded, revision, response = await self._transact(
            key,
            self._expected(expected_revision),
            {"request_put": {"key": _b64(key), "value": _b64_bytes(value), "prev_kv": True}},
            (value, decoded),
        )
        if not succeeded:
            raise self._refusal(key, expected_revision, response)
        previous = key_value(response["response_put"]["prev_kv"])
        self._remember_decoded(key, revision, decoded)
        return KeyValue(key, value, previous.create_revision, revision)

    async def delete(self, key: str, *, expected_revision: int = 0) -> KeyValue:
        succeeded, revision, response = await self._transact(
            key,
            self._expected(expected_revision),
            {"request_delete_range": {"key": _b64(key), "prev_kv": True}},
        )
        if not succeeded:
            raise self._refusal(key, expected_revision, response)
        previous = key_value(response["response_delete_range"]["prev_kvs"][0])
        return KeyValue(key, previous.value, previous.create_revision, revision)

    # --- compaction ------------------------------------------------------------------

    async def compact(self, revision: int) -> None:
        self._check_open()
        try:
            await self._gateway.call(
                "kv/compaction", {"revision": revision, "physical": True}, idempotent=True
            )
        except _RevisionError as error:
            if not error.compacted:
                raise FutureRevision(revision, await self.current_revision()) from None
            # Compacted at or past `revision` already (by us or another server).
        self._compacted = max(self._compacted, revision)

    async def _readable(self, revision: int) -> bool:
        try:
            await self._gateway.call(
                "kv/range",
                {"key": _b64(_ALL_KEYS), "count_only": True, "revision": revision},
                idempotent=True,
            )
        except _RevisionError as error:
            if error.compacted:
                return False
            raise
        return True

    async def compacted_revision(self) -> int:
        self._check_open()
        if await self._readable(max(self._compacted, 1)):
            return self._compacted
        # Compacted by another client since: find the oldest revision still readable.
        low, high = self._compacted + 1, await self.current_revision()
        while low < high:
            middle = (low + high) // 2
            if await self._readable(middle):
                high = middle
            else:
                low = middle + 1
        self._compacted = max(self._compacted, low)
        return self._compacted

    async def _compact_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._compact_interval)
            try:
                target = await self.current_revision() - self._compact_keep
                if target > await self.compacted_revision():
                    await self.compact(target)
            except StorageError:
                log.exception("periodic compaction of etcd failed")

    # --- the shared stream -------------------------------------------------------------

    async def _follow(self) -> None:
        delay = _RETRY_MIN
        while True:
            try:
                async with self._gateway.stream(
                    "watch", _watch_request(self._position + 1)
                ) as lines:
                    async for result in _watch_results(lines):
                        if result.get("created"):
                            self._stream_live.set()
                        if "compact_revision" in result and int(result["compact_revision"]):
                            self._restart_after_compaction(int(result["compact_revision"]))
                            break
                        if result.get("canceled"):
                            raise EtcdError(f"etcd canceled the watch: {result}")
                        events = watch_events(result)
                        if events:
                            self._deliver(events)
                        delay = _RETRY_MIN
                # The stream ended (etcd going away): connect again from where it stopped.
                await asyncio.sleep(_RETRY_MIN)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the stream must outlive any failure
                log.warning("etcd watch failed (%r); reconnecting in %.2fs", error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX)

    def _restart_after_compaction(self, compacted: int) -> None:
        """The stream fell behind a compaction: every watcher has missed events."""
        log.warning("etcd watch fell behind compaction at %d; watchers restart", compacted)
        self._compacted = max(self._compacted, compacted)
        self._subscribers.end_all(dropped=True)
        self._history.clear()
        self._decoded.clear()
        self._position = max(self._position, compacted - 1)
        self._history_floor = self._position

    def _deliver(self, events: Events) -> None:
        fresh = [event for event in events if event.revision > self._position]
        if not fresh:
            return
        if self._decoded or self._writing:
            fresh = [self._with_decoded(event) for event in fresh]
        self._history.extend(fresh)
        while len(self._history) > self._history_events:
            # Whatever falls out of the history is no longer replayable from it.
            self._history_floor = self._history.popleft().revision
        self._position = fresh[-1].revision
        self._subscribers.fan_out(fresh)

    def _with_decoded(self, event: WatchEvent) -> WatchEvent:
        if event.type is not EventType.PUT:
            return event
        kv = event.kv
        decoded = None
        answered = self._decoded.pop(kv.mod_revision, None)
        if answered is not None and answered[0] == kv.key:
            decoded = answered[1]
        else:
            # Equal bytes encode equal objects, whichever write of this key it was.
            in_flight = self._writing.get(kv.key)
            if in_flight is not None and in_flight[0] == kv.value:
                decoded = in_flight[1]
        if decoded is None:
            return event
        decorated = KeyValue(kv.key, kv.value, kv.create_revision, kv.mod_revision, decoded)
        return WatchEvent(event.type, decorated, event.prev)

    # --- watch -----------------------------------------------------------------------

    async def _replay(self, prefix: str, after: int, until: int) -> AsyncIterator[WatchEvent]:
        """Events under `prefix` with after < revision <= until, which the shared stream
        has already passed: from the history when it reaches back far enough, else from
        a catch-up watch of the whole keyspace (so that every revision shows up in it and
        it is known when `until` is reached)."""
        if after >= self._history_floor:
            for event in [e for e in self._history if after < e.revision <= until]:
                if event.kv.key.startswith(prefix):
                    yield event
            return
        async with self._gateway.stream("watch", _watch_request(after + 1)) as lines:
            async for result in _watch_results(lines):
                compacted = int(result.get("compact_revision", 0))
                if compacted:
                    self._compacted = max(self._compacted, compacted)
                    raise Compacted(after, compacted)
                if result.get("canceled"):
                    raise EtcdError(f"etcd canceled the watch: {result}")
                events = watch_events(result)
                for event in events:
                    if event.revision > until:
                        return
                    if event.kv.key.startswith(prefix):
                        yield event
                # One revision's events come in one message: `until` is complete.
                if events and events[-1].revision >= until:
                    return
        raise EtcdError("etcd closed a watch before it caught up")

    async def watch(
        self, prefix: str, *, after: int, progress_notify: bool = False
    ) -> AsyncIterator[WatchEvent]:
        self._check_open()
        if after < self._compacted:
            raise Compacted(after, self._compacted)
        position = after
        # Catch up before subscribing, so the live queue only has to hold what arrives
        # during the last, short replay.
        while position < self._history_floor:
            target = self._position
            async for event in self._replay(prefix, position, target):
                yield event
            position = target
        subscriber = self._subscribers.subscribe(prefix, progress_notify)
        try:
            if position < self._position:
                target = self._position
                replayed = position
                async for event in self._replay(prefix, position, target):
                    replayed = event.revision
                    yield event
                position = target
                if progress_notify and replayed < target:
                    yield progress_event(target)
            async for event in subscriber.follow(position):
                yield event
        finally:
            self._subscribers.unsubscribe(subscriber)
