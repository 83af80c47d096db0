"""An in-memory Kubernetes API server over HTTP on 127.0.0.1, for kr8s: kmock plus the semantics kr8s needs.

kmock's ``KubernetesScaffold`` serves discovery (``/api``, ``/apis``, ``/version``) and runs the aiohttp
server; :class:`ApiServer` adds the object store with the behaviour a real API server has and kmock's own
emulator lacks (design.md "Test substrate"):

- ``/version/`` with a trailing slash (kr8s asks for it) and a supported server version;
- a ``resourceVersion`` stamped on every write from one counter, ``uid``, ``generation`` bumped on spec
  changes; ``PUT`` with a stale ``resourceVersion`` answers 409, ``POST`` of an existing name 409;
- ``status`` only through the ``/status`` subresource for kinds that have one, merge and JSON patches;
- label and field selectors on lists and watches;
- watches that start at a ``resourceVersion`` (replaying what happened since), send bookmarks, end after
  ``timeoutSeconds``, and answer ``410 Gone`` (as a watch ERROR event) below the compaction point;
- the service proxy ``/api/v1/namespaces/NS/services/SVC:PORT/proxy/PATH`` forwarding to a registered
  127.0.0.1 backend (``proxy_service``), as the real API server forwards to a Service's endpoints.

Tests reach into the server with :meth:`drop_watches`, :meth:`compact`, :attr:`faults` (fail matching
requests) and :attr:`writes` (every write, in order, for invariants over the whole history).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import json
import re
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs
import httpx
import jsonpatch
import kmock

from canarylab.engine.kinds import ALL_KINDS, DEPLOYMENT, Kind
from canarylab.engine.memory_cluster import deployment_ready_status

GroupPlural = tuple[str, str]
Key = tuple[GroupPlural, str, str]  # (group, plural), namespace ("" when cluster-scoped), name

_NAMESPACE_PATH = re.compile(r"^/api/v1/namespaces(?:/([^/]+))?(?:/(status))?/?$")
_WITH_STATUS = {"deployments", "services", "pods", "namespaces", "horizontalpodautoscalers", "canaries",
                "httproutes"}


@dataclass(frozen=True)
class Write:
    """One accepted write: the new ``resourceVersion``, the watch event type and the object after it."""

    rv: int
    type: str
    kind: str
    namespace: str
    name: str
    object: dict[str, Any]


class _Drop:
    """Sentinel pushed to watch queues: end the stream (``abort``: cut the connection instead)."""

    def __init__(self, abort: bool) -> None:
        self.abort = abort


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


_SELECTOR_PART = re.compile(r"\s*([^,(]+(?:\([^)]*\))?)\s*(?:,|$)")


def parse_selector(text: str) -> list[Callable[[dict[str, str]], bool]]:
    """A Kubernetes label selector (``a=b,c!=d,e,!f,g in (x,y),h notin (z)``) as predicates on labels."""
    tests: list[Callable[[dict[str, str]], bool]] = []
    for part in (m.group(1).strip() for m in _SELECTOR_PART.finditer(text) if m.group(1).strip()):
        if m := re.fullmatch(r"(\S+)\s+(in|notin)\s+\(([^)]*)\)", part):
            key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",")}
            if op == "in":
                tests.append(lambda labels, k=key, vs=values: labels.get(k) in vs)
            else:
                tests.append(lambda labels, k=key, vs=values: labels.get(k) not in vs)
        elif "!=" in part:
            key, value = (s.strip() for s in part.split("!=", 1))
            tests.append(lambda labels, k=key, v=value: labels.get(k) != v)
        elif "=" in part:
            key, value = (s.strip() for s in part.replace("==", "=").split("=", 1))
            tests.append(lambda labels, k=key, v=value: labels.get(k) == v)
        elif part.startswith("!"):
            absent = part[1:].strip()
            tests.append(lambda labels, k=absent: k not in labels)
        else:
            tests.append(lambda labels, k=part: k in labels)
    return tests


def _now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status(code: int, reason: str, message: str) -> aiohttp.web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}
    return aiohttp.web.json_response(body, status=code)


@attrs.define(kw_only=True)
class ApiServer(kmock.KubernetesScaffold):
    """The fixed kmock Kubernetes API: see the module docstring. Start it with :func:`serve`."""

    bookmark_interval: float = 1.0
    kinds: dict[GroupPlural, Kind] = attrs.field(factory=lambda: {(k.group, k.plural): k for k in ALL_KINDS})
    faults: list[Callable[[kmock.Request], int | None]] = attrs.field(factory=list)
    """Each is asked about every object request; a status code it returns fails that request."""
    controllers: list[Callable[[ApiServer, Write], None]] = attrs.field(factory=list)
    """Called after every write, in order, like controllers in the cluster; they may write (``set_status``)."""
    writes: list[Write] = attrs.field(factory=list, init=False)
    _pending: list[Write] = attrs.field(factory=list, init=False)
    _dispatching: bool = attrs.field(default=False, init=False)
    _store: dict[Key, dict[str, Any]] = attrs.field(factory=dict, init=False)
    _rv: int = attrs.field(default=0, init=False)
    _compacted: int = attrs.field(default=0, init=False)
    _watchers: set[tuple[GroupPlural, asyncio.Queue[Any]]] = attrs.field(factory=set, init=False)
    _proxies: dict[tuple[str, str, str], str] = attrs.field(factory=dict, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        # kr8s asks for `/version/`; kmock only knows `/version`.
        self.fallback["get /version/"] << self._serve_server_version
        for kind in self.kinds.values():
            info = self.resources[f"{kind.api_version}/{kind.plural}"]
            info.kind = kind.kind
            info.singular = kind.kind.lower()
            info.namespaced = kind.namespaced
            info.verbs = {"get", "list", "watch", "create", "update", "patch", "delete"}
            if kind.plural in _WITH_STATUS:
                info.subresources = {"status"}

    async def _serve_server_version(self, request: kmock.Request) -> dict[str, str]:
        # A version kr8s supports, so it does not warn.
        return {"major": "1", "minor": "31", "gitVersion": "v1.31.0", "platform": "linux/amd64"}

    # ------------------------------------------------------------------------------------- test API

    @property
    def resource_version(self) -> int:
        """The last ``resourceVersion`` handed out."""
        return self._rv

    def proxy_service(self, namespace: str, service: str, port: int | str, backend: str) -> None:
        """Forward the service proxy of ``service:port`` in ``namespace`` to ``backend`` (an http URL)."""
        self._proxies[(namespace, service, str(port))] = backend.rstrip("/")

    def drop_watches(self, *, abort: bool = False) -> int:
        """End every open watch (``abort``: cut the TCP connection); returns how many there were."""
        for _, queue in list(self._watchers):
            queue.put_nowait(_Drop(abort))
        return len(self._watchers)

    def restore(self, other: ApiServer) -> None:
        """Take over another server's objects and history, as an API server restarted on the same etcd."""
        self._store = copy.deepcopy(other._store)
        self.writes = list(other.writes)
        self._rv = other._rv
        self._compacted = other._compacted

    @property
    def requests(self) -> list[kmock.Request]:
        """Every request served so far, in order."""
        return list(self._requests)

    @property
    def watching(self) -> int:
        """How many watches are open now."""
        return len(self._watchers)

    async def until_watching(self, count: int = 1, timeout: float = 3.0) -> None:
        """Wait (bounded) until ``count`` watches are open."""
        async with asyncio.timeout(timeout):
            while len(self._watchers) < count:
                await asyncio.sleep(0.01)

    def compact(self) -> None:
        """Forget the history: watches resuming from an older ``resourceVersion`` get ``410 Gone``."""
        self._compacted = self._rv

    def objects(self, kind: Kind, namespace: str | None = None) -> list[dict[str, Any]]:
        """The stored objects of a kind (a deep copy)."""
        return [copy.deepcopy(obj) for (gp, ns, _), obj in sorted(self._store.items())
                if gp == (kind.group, kind.plural) and (namespace is None or ns == namespace)]

    def put_object(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Store an object directly (as if created by someone else), stamping metadata; returns it."""
        kind = next(k for k in self.kinds.values() if k.kind == obj["kind"])
        meta = obj.setdefault("metadata", {})
        key = ((kind.group, kind.plural), meta.get("namespace", ""), meta["name"])
        old = self._store.get(key)
        self._commit(key, kind, copy.deepcopy(obj), old)
        return copy.deepcopy(self._store[key])

    def set_status(self, kind: Kind, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Replace an object's status, as its controller would (a write with its own resourceVersion)."""
        key = ((kind.group, kind.plural), namespace if kind.namespaced else "", name)
        old = self._store[key]
        self._commit(key, kind, {**copy.deepcopy(old), "status": copy.deepcopy(status)}, old)

    def history(self, kind: Kind) -> Iterator[Write]:
        """Writes of one kind, in order."""
        return (w for w in self.writes if w.kind == kind.kind)

    # ---------------------------------------------------------------------------------- dispatching

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        # kmock's path parser reads the cluster-scoped resource "namespaces" as the namespace prefix of a
        # namespaced path (`/api/v1/namespaces/test` = "namespace test, no resource"): parse those here.
        match = _NAMESPACE_PATH.match(raw_request.path)
        if match is None:
            return await super().__call__(raw_request)
        await raw_request.read()
        try:
            data = await raw_request.json()
        except ValueError:
            data = None
        request = kmock.Request(id=len(self._requests), method=raw_request.method, url=raw_request.url,
                                params=dict(raw_request.query), headers=dict(raw_request.headers), data=data,
                                body=await raw_request.read(), resource=kmock.resource("", "v1", "namespaces"),
                                name=match.group(1), subresource=match.group(2), raw_request=raw_request)
        self._requests.append(request)
        return await self._handle(request)

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        res = request.resource
        if res is None or not res.plural or (res.group or "", res.plural) not in self.kinds:
            return await super()._handle(request)
        kind = self.kinds[(res.group or "", res.plural)]
        for fault in list(self.faults):
            code = fault(request)
            if code is not None:
                return _status(code, {409: "Conflict", 404: "NotFound", 410: "Gone"}.get(code, "InternalError"),
                               f"injected fault {code}")
        sub = request.subresource or ""
        if kind.plural == "services" and "proxy" in sub.split("/")[:1] and request.name:
            return await self._proxy(request, sub)
        if sub not in ("", "status"):
            return _status(404, "NotFound", f"the server could not find the requested resource ({sub})")
        method = request.method.value if request.method else "GET"
        if method == "GET" and request.params.get("watch") in ("true", "1"):
            return await self._watch(request, kind)
        if method == "GET" and request.name is None:
            return self._list(request, kind)
        if method == "GET":
            return self._get(request, kind)
        if method == "POST" and request.name is None:
            return self._create(request, kind)
        if method == "PUT" and request.name:
            return self._replace(request, kind, status=sub == "status")
        if method == "PATCH" and request.name:
            return self._patch(request, kind, status=sub == "status")
        if method == "DELETE" and request.name:
            return self._delete(request, kind)
        return _status(405, "MethodNotAllowed", f"{method} is not supported on this path")

    def _key(self, request: kmock.Request, kind: Kind, name: str | None = None) -> Key:
        ns = (request.namespace or "") if kind.namespaced else ""
        return (kind.group, kind.plural), ns, name or request.name or ""

    def _out(self, obj: dict[str, Any], kind: Kind, request: kmock.Request) -> dict[str, Any]:
        out = copy.deepcopy(obj)
        version = request.resource.version if request.resource else None
        out["apiVersion"] = f"{kind.group}/{version}" if kind.group and version else (version or kind.api_version)
        out["kind"] = kind.kind
        return out

    def _matches(self, request: kmock.Request, obj: dict[str, Any]) -> bool:
        meta = obj.get("metadata", {})
        labels = meta.get("labels") or {}
        if not all(test(labels) for test in parse_selector(request.params.get("labelSelector", ""))):
            return False
        for part in filter(None, request.params.get("fieldSelector", "").split(",")):
            field, _, value = part.partition("=")
            field = field.rstrip("!=")
            negate = "!=" in part
            actual = {"metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace")}.get(field)
            if field.startswith("involvedObject."):
                actual = (obj.get("involvedObject") or {}).get(field.split(".", 1)[1])
            if (str(actual) == value.lstrip("=")) == negate:
                return False
        return True

    # ------------------------------------------------------------------------------------ the verbs

    def _list(self, request: kmock.Request, kind: Kind) -> aiohttp.web.Response:
        items = [self._out(obj, kind, request) for (gp, ns, _), obj in sorted(self._store.items())
                 if gp == (kind.group, kind.plural)
                 and (not kind.namespaced or request.namespace is None or ns == request.namespace)
                 and self._matches(request, obj)]
        for item in items:  # a real list leaves these out of the items
            item.pop("apiVersion", None)
            item.pop("kind", None)
        version = request.resource.version if request.resource else "v1"
        return aiohttp.web.json_response({
            "kind": f"{kind.kind}List",
            "apiVersion": f"{kind.group}/{version}" if kind.group else version,
            "metadata": {"resourceVersion": str(self._rv)},
            "items": items,
        })

    def _get(self, request: kmock.Request, kind: Kind) -> aiohttp.web.Response:
        obj = self._store.get(self._key(request, kind))
        if obj is None:
            return _status(404, "NotFound", f'{kind.plural} "{request.name}" not found')
        return aiohttp.web.json_response(self._out(obj, kind, request))

    def _create(self, request: kmock.Request, kind: Kind) -> aiohttp.web.Response:
        obj = request.data
        if not isinstance(obj, dict) or not (obj.get("metadata") or {}).get("name"):
            return _status(422, "Invalid", "metadata.name: Required value")
        obj = copy.deepcopy(obj)
        if kind.namespaced:
            obj["metadata"]["namespace"] = request.namespace or obj["metadata"].get("namespace") or "default"
        key = self._key(request, kind, obj["metadata"]["name"])
        key = (key[0], obj["metadata"].get("namespace", "") if kind.namespaced else "", key[2])
        if key in self._store:
            return _status(409, "AlreadyExists", f'{kind.plural} "{key[2]}" already exists')
        if kind.plural in _WITH_STATUS:
            obj.pop("status", None)
        for field in ("resourceVersion", "uid", "creationTimestamp", "generation"):
            obj["metadata"].pop(field, None)
        self._commit(key, kind, obj, None)
        return aiohttp.web.json_response(self._out(self._store[key], kind, request), status=201)

    def _replace(self, request: kmock.Request, kind: Kind, *, status: bool) -> aiohttp.web.Response:
        key = self._key(request, kind)
        old = self._store.get(key)
        if old is None:
            return _status(404, "NotFound", f'{kind.plural} "{request.name}" not found')
        new = request.data
        if not isinstance(new, dict):
            return _status(400, "BadRequest", "the body must be a JSON object")
        rv = (new.get("metadata") or {}).get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            return self._stale(kind, request.name or "")
        if status:
            obj = copy.deepcopy(old)
            obj["status"] = copy.deepcopy(new.get("status"))
        else:
            obj = copy.deepcopy(new)
            obj["metadata"] = {**obj.get("metadata", {}),
                               **{f: old["metadata"][f] for f in ("uid", "creationTimestamp", "namespace")
                                  if f in old["metadata"]}}
            if kind.plural in _WITH_STATUS:
                obj["status"] = copy.deepcopy(old.get("status"))
                if obj["status"] is None:
                    obj.pop("status")
        self._commit(key, kind, obj, old)
        return aiohttp.web.json_response(self._out(self._store[key], kind, request))

    def _patch(self, request: kmock.Request, kind: Kind, *, status: bool) -> aiohttp.web.Response:
        key = self._key(request, kind)
        old = self._store.get(key)
        if old is None:
            return _status(404, "NotFound", f'{kind.plural} "{request.name}" not found')
        ctype = request.headers.get("Content-Type", request.headers.get("content-type", ""))
        try:
            if "json-patch" in ctype:
                obj = jsonpatch.apply_patch(old, request.data)
            else:  # merge-patch; strategic merge treated as merge for the fields the engine writes
                patch = request.data
                if not isinstance(patch, dict):
                    return _status(400, "BadRequest", "a merge patch must be a JSON object")
                rv = (patch.get("metadata") or {}).get("resourceVersion")
                if rv and rv != old["metadata"]["resourceVersion"]:
                    return self._stale(kind, request.name or "")
                obj = merge_patch(old, patch)
        except jsonpatch.JsonPatchException as err:
            return _status(422, "Invalid", str(err))
        if kind.plural in _WITH_STATUS:
            if status:  # only status changes through the subresource
                obj = {**copy.deepcopy(old), "status": obj.get("status")}
            else:  # and status never through the main resource
                obj["status"] = copy.deepcopy(old.get("status"))
            if obj.get("status") is None:
                obj.pop("status", None)
        for field in ("uid", "creationTimestamp", "namespace", "name"):
            if field in old["metadata"]:
                obj.setdefault("metadata", {})[field] = old["metadata"][field]
        self._commit(key, kind, obj, old)
        return aiohttp.web.json_response(self._out(self._store[key], kind, request))

    def _delete(self, request: kmock.Request, kind: Kind) -> aiohttp.web.Response:
        key = self._key(request, kind)
        old = self._store.pop(key, None)
        if old is None:
            return _status(404, "NotFound", f'{kind.plural} "{request.name}" not found')
        self._rv += 1
        gone = copy.deepcopy(old)
        gone["metadata"]["resourceVersion"] = str(self._rv)
        self._publish(kind, "DELETED", key, gone)
        return aiohttp.web.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {},
                                          "status": "Success", "details": {"name": key[2], "kind": kind.plural}})

    def _stale(self, kind: Kind, name: str) -> aiohttp.web.Response:
        return _status(409, "Conflict", f'Operation cannot be fulfilled on {kind.plural} "{name}": the object has '
                                        "been modified; please apply your changes to the latest version and try again")

    def _commit(self, key: Key, kind: Kind, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        self._rv += 1
        meta = obj.setdefault("metadata", {})
        meta["resourceVersion"] = str(self._rv)
        if old is None:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = _now()
            meta["generation"] = 1
        else:
            spec_changed = {k: v for k, v in obj.items() if k not in ("metadata", "status")} != \
                           {k: v for k, v in old.items() if k not in ("metadata", "status")}
            meta["generation"] = old["metadata"].get("generation", 1) + (1 if spec_changed else 0)
        obj["apiVersion"], obj["kind"] = kind.api_version, kind.kind
        self._store[key] = obj
        self._publish(kind, "ADDED" if old is None else "MODIFIED", key, obj)

    def _publish(self, kind: Kind, type: str, key: Key, obj: dict[str, Any]) -> None:
        snapshot = copy.deepcopy(obj)
        write = Write(self._rv, type, kind.kind, key[1], key[2], snapshot)
        self.writes.append(write)
        for gp, queue in list(self._watchers):
            if gp == key[0]:
                queue.put_nowait((self._rv, type, key[1], snapshot))
        if not self.controllers:
            return
        self._pending.append(write)
        if self._dispatching:
            return  # a controller wrote: delivered after the current write, in order
        self._dispatching = True
        try:
            while self._pending:
                current = self._pending.pop(0)
                for controller in list(self.controllers):
                    controller(self, current)
        finally:
            self._dispatching = False

    # ---------------------------------------------------------------------------------------- watch

    async def _watch(self, request: kmock.Request, kind: Kind) -> aiohttp.web.StreamResponse:
        raw = request._raw_request
        assert raw is not None
        since = request.params.get("resourceVersion", "")
        bookmarks = request.params.get("allowWatchBookmarks") in ("true", "1")
        timeout = float(request.params.get("timeoutSeconds") or 0) or None
        namespace = request.namespace if kind.namespaced else None
        response = aiohttp.web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        await response.prepare(raw)

        async def send(type: str, obj: dict[str, Any]) -> None:
            await response.write(json.dumps({"type": type, "object": obj}).encode() + b"\n")

        queue: asyncio.Queue[Any] = asyncio.Queue()
        entry = ((kind.group, kind.plural), queue)
        self._watchers.add(entry)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout else None
        try:
            if since and since != "0" and int(since) < self._compacted:
                await send("ERROR", {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                     "message": f"too old resource version: {since} ({self._compacted})",
                                     "reason": "Expired", "code": 410})
                return response
            if not since or since == "0":
                backlog = [(int(obj["metadata"]["resourceVersion"]), "ADDED", ns, copy.deepcopy(obj))
                           for (gp, ns, _), obj in sorted(self._store.items()) if gp == entry[0]]
            else:
                backlog = [(w.rv, w.type, w.namespace, w.object) for w in self.writes
                           if w.rv > int(since) and w.kind == kind.kind]
            for _rv, type, ns, obj in backlog:
                if (namespace is None or ns == namespace) and self._matches(request, obj):
                    await send(type, self._out(obj, kind, request))
            while True:
                wait = self.bookmark_interval if bookmarks else None
                if deadline is not None:
                    left = deadline - loop.time()
                    if left <= 0:
                        return response
                    wait = min(wait, left) if wait is not None else left
                try:
                    item = await asyncio.wait_for(queue.get(), wait)
                except TimeoutError:
                    if bookmarks:
                        await send("BOOKMARK", {"kind": kind.kind, "apiVersion": kind.api_version,
                                                "metadata": {"resourceVersion": str(self._rv)}})
                    continue
                if isinstance(item, _Drop):
                    if item.abort and raw.transport is not None:
                        raw.transport.abort()
                    return response
                _rv, type, ns, obj = item
                if (namespace is None or ns == namespace) and self._matches(request, obj):
                    await send(type, self._out(obj, kind, request))
        except (ConnectionResetError, asyncio.CancelledError):
            return response
        finally:
            self._watchers.discard(entry)

    # ---------------------------------------------------------------------------------------- proxy

    async def _proxy(self, request: kmock.Request, sub: str) -> aiohttp.web.Response:
        service, _, port = (request.name or "").partition(":")
        ns = request.namespace or ""
        backend = self._proxies.get((ns, service, port or "80"))
        if backend is None:
            return _status(503, "ServiceUnavailable", f'no endpoints available for service "{service}:{port}"')
        path = sub.split("/", 1)[1] if "/" in sub else ""
        raw_path = request.url.path
        marker = "/proxy"
        tail = raw_path[raw_path.index(marker) + len(marker):] if marker in raw_path else "/" + path
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("content-type", "accept")}
        async with httpx.AsyncClient(timeout=30) as client:
            answer = await client.request(request.method.value, backend + (tail or "/"), content=request.body,
                                          headers=headers, params=dict(request.params))
        return aiohttp.web.Response(status=answer.status_code, body=answer.content,
                                    content_type=answer.headers.get("content-type", "text/plain").split(";")[0])


@contextlib.asynccontextmanager
async def serve(*, port: int | None = None, bookmark_interval: float = 1.0,
                restore: ApiServer | None = None) -> AsyncIterator[ApiServer]:
    """Start a fresh :class:`ApiServer` on 127.0.0.1 (a free port unless given); ends open watches on exit.

    ``restore``: start with that (stopped) server's objects and history, as after an API server restart.
    """
    api = ApiServer(bookmark_interval=bookmark_interval)
    if restore is not None:
        api.restore(restore)
    async with api, kmock.Server(api, host="127.0.0.1", port=port):
        try:
            yield api
        finally:
            api.drop_watches(abort=True)
            await asyncio.sleep(0)


def ready_deployments(server: ApiServer, write: Write) -> None:
    """A controller marking every Deployment ready at once with its spec's replicas (nothing runs pods here)."""
    if write.kind != "Deployment" or write.type == "DELETED":
        return
    obj = write.object
    status = deployment_ready_status(obj)
    if (obj.get("status") or {}) != status:
        server.set_status(DEPLOYMENT, write.namespace, write.name, status)


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_kubeconfig(path: Path, server: str, context: str = "kmock", namespace: str = "default") -> Path:
    """A kubeconfig with one context ``context`` pointing at ``server`` (plain http, a dummy token)."""
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": context, "cluster": {"server": server}}],
        "users": [{"name": context, "user": {"token": "kmock-token"}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context, "namespace": namespace}}],
    }))
    return path
