"""The engine's Cluster port on a real Kubernetes API server, through kr8s (async).

Objects cross the port as plain Kubernetes JSON; kr8s classes (:mod:`canarylab.kube.objects`) give every kind
its URL, and kr8s's ``Api.call_api`` carries the kubeconfig's credentials. On top of that this adapter adds
what a long-running controller needs from a flaky network:

- connection errors, timeouts, 429 and 5xx are retried with exponential backoff; after the last attempt the
  error says which context and server failed and what to try;
- ``404`` becomes :class:`NotFound`, ``409`` :class:`Conflict`; a status patch that meets a 409 is retried
  after re-reading the object;
- watches list first (``ADDED`` for every object), then watch from the list's ``resourceVersion`` with
  bookmarks, resume from the last seen ``resourceVersion`` after a dropped connection, and relist (sending
  only the differences) after ``410 Gone``;
- Events are recorded as client-go's recorder does (source ``flagger``, repeats aggregated into ``count``);
- every write is logged on one line (``patch Canary test/podinfo status``), and ``readonly`` or a namespace
  allow-list make writes outside them fail before they reach the server.
"""

from __future__ import annotations

import asyncio
import binascii
import json
import logging
import os
import ssl
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import kr8s
import kr8s.asyncio
import yaml
from kr8s.asyncio import Api

from canarylab.engine.event_correlator import EventCorrelator
from canarylab.engine.kinds import EVENT, Kind, Obj, kind_of
from canarylab.engine.ports import Clock, ClusterError, Conflict, NotFound, WatchEvent
from canarylab.errors import UserError
from canarylab.kube.config import namespace_of, server_of
from canarylab.kube.objects import kr8s_class

log = logging.getLogger("canarylab.kube")

Log = Callable[[str], None]
EventList = list[WatchEvent]
ObjList = list[Obj]  # inside KubeCluster, `list` is the port method

TRANSIENT_STATUS = {429, 500, 502, 503, 504}
"""HTTP answers worth retrying: the API server is overloaded or restarting."""

WATCH_TIMEOUT = 300
"""Seconds the server keeps a watch open before we reconnect from the last ``resourceVersion``."""


class ApiUnreachable(ClusterError):
    """The API server did not answer (connection refused, reset, timed out) after every retry."""


class Forbidden(ClusterError):
    """RBAC refused a request (403). ``str(err)`` is one line naming the verb, the resource and the fix;
    ``verb``, ``resource`` (``canaries/status``), ``group`` and ``namespace`` say the same for code."""

    def __init__(self, message: str, *, verb: str, resource: str, group: str, namespace: str) -> None:
        super().__init__(message)
        self.verb = verb
        self.resource = resource
        self.group = group
        self.namespace = namespace


VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
"""The RBAC verb of an HTTP method (``GET`` is ``get``, ``list`` or ``watch`` by the request's shape)."""


def rbac_verb(method: str, name: str | None, params: Mapping[str, str] | None = None) -> str:
    """The RBAC verb the API server checks for a request."""
    if method == "GET":
        if (params or {}).get("watch") in ("true", "1"):
            return "watch"
        return "get" if name else "list"
    return VERBS.get(method, method.lower())


def _forbidden_user(message: str) -> str:
    # The API server says: ... is forbidden: User "system:serviceaccount:ns:sa" cannot patch resource ...
    start = message.find('User "')
    if start < 0:
        return ""
    end = message.find('"', start + 6)
    return message[start + 6:end] if end > 0 else ""


def forbidden(kind: Kind, verb: str, namespace: str | None, subresource: str | None, message: str) -> Forbidden:
    """One line for a 403: who may not do what, where, and where to grant it."""
    resource = kind.plural + (f"/{subresource}" if subresource else "")
    group = kind.group or "core"
    user = _forbidden_user(message)
    who = who_is(user) if user else "canarylab's credentials"
    where = f"in namespace {namespace}" if namespace and kind.namespaced else (
        "in any namespace" if kind.namespaced else "(cluster-scoped)")
    return Forbidden(f'forbidden: {who} may not "{verb}" {resource} (API group {group}) {where}; grant that '
                     f'verb on that resource in the engine\'s ClusterRole (deploy/base/rbac.yaml) or Role',
                     verb=verb, resource=resource, group=kind.group, namespace=namespace or "")


def who_is(user: str) -> str:
    """``service account NS/NAME`` for ``system:serviceaccount:NS:NAME``, else ``user NAME``."""
    parts = user.split(":")
    if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
        return f"service account {parts[2]}/{parts[3]}"
    return f"user {user}"


class ConnectError(UserError):
    """``canarylab engine`` could not reach the API server at start; the message says what to try."""


def unreachable_message(context: str, server: str, reason: str) -> str:
    """One paragraph for a user whose API server does not answer."""
    return (f"cannot reach the Kubernetes API server of context {context!r} at {server or '(no server set)'} "
            f"({reason}). Is the cluster running? Check with `kubectl --context {context} cluster-info`; "
            "for the lab run `canarylab doctor` or `canarylab up`.")


def describe(err: BaseException) -> str:
    """A short reason for a connection failure (``connection refused``, ``timed out``)."""
    chain: list[BaseException] = []
    cause: BaseException | None = err
    while cause is not None and cause not in chain:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    if any(isinstance(c, ConnectionRefusedError) for c in chain):
        return "connection refused"
    text = str(err) or type(err).__name__
    lowered = text.lower()
    if "refused" in lowered:
        return "connection refused"
    if isinstance(err, httpx.TimeoutException | kr8s.APITimeoutError) or "timed out" in lowered:
        return "timed out"
    if "name or service not known" in lowered or "nodename nor servname" in lowered:
        return "unknown host"
    return text


_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (httpx.TransportError, kr8s.APITimeoutError, OSError)


def rfc3339(seconds: float) -> str:
    """A Kubernetes timestamp for seconds since the epoch."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Backoff:
    """Exponential backoff: ``first``, doubling, capped at ``cap`` seconds."""

    def __init__(self, first: float = 0.2, cap: float = 5.0) -> None:
        self.first = first
        self.cap = cap
        self.delay = first

    def next(self) -> float:
        """The delay to wait now; the next one doubles."""
        delay, self.delay = self.delay, min(self.delay * 2, self.cap)
        return delay

    def reset(self) -> None:
        """Back to ``first`` after a success."""
        self.delay = self.first


class _Gone(Exception):
    """The watch's ``resourceVersion`` is too old (410): relist."""


class KubeCluster:
    """The Cluster port over kr8s. Build it with :meth:`connect` (or pass a connected kr8s ``Api``).

    ``namespaces``: writes outside these namespaces are refused (``None``: anywhere). ``readonly``: every write
    is refused. ``log`` receives one line per write and the connection notices. ``attempts`` bounds the retries
    of one request on connection errors and 5xx; watches retry forever.
    """

    def __init__(self, api: Api, *, context: str = "", server: str = "", clock: Clock | None = None,
                 namespaces: Collection[str] | None = None, readonly: bool = False, log: Log | None = None,
                 attempts: int = 6, backoff: tuple[float, float] = (0.2, 5.0)) -> None:
        self.api = api
        self.fence: Callable[[], str | None] | None = None
        """Asked before every write: a reason to refuse it (e.g. this process no longer holds the leader lease),
        or ``None`` to go ahead. Set by ``--leader-elect``, so a deposed leader cannot write a moment too long."""
        self.context = context or getattr(api.auth, "active_context", "")
        self.server = server or api.auth.server
        self.clock = clock
        self.namespaces = None if namespaces is None else frozenset(namespaces)
        self.readonly = readonly
        self.log: Log = log or log_to_logger
        self.attempts = attempts
        self.backoff = backoff
        self.writes = 0
        """How many writes this adapter sent (tests and the status line use it)."""
        self._correlator = EventCorrelator()
        self._unreachable = False
        # No timeout at all is kr8s's default: a black-holed API server would hang the engine forever.
        api.timeout = httpx.Timeout(30.0, connect=5.0)

    @classmethod
    async def connect(cls, context: str | None = None, *, kubeconfig: str | None = None, server: str = "",
                      wait: bool = False, log: Log | None = None, serviceaccount: str | None = None,
                      **kwargs: Any) -> KubeCluster:
        """Authenticate with the kubeconfig's ``context`` and check the server answers.

        ``serviceaccount``: log in as a pod does instead, with the token and CA in that directory and
        ``KUBERNETES_SERVICE_HOST``/``_PORT`` (used only when there is no kubeconfig: kr8s reads a kubeconfig
        first and falls back to the service account). ``context`` then only names the login in messages.
        Unreachable: with ``wait`` retry with backoff (each failure logged), else raise :class:`ConnectError`.
        A missing context or unusable credentials raise :class:`UserError` at once.
        """
        say = log or log_to_logger
        backoff = Backoff(0.5, 10.0)
        server = server or ("" if serviceaccount else server_of(context, kubeconfig))
        name = context or "(current)"
        while True:
            try:
                if serviceaccount:
                    api = await kr8s.asyncio.api(kubeconfig=kubeconfig, serviceaccount=serviceaccount)
                else:
                    api = await kr8s.asyncio.api(context=context, kubeconfig=kubeconfig,
                                                 namespace=namespace_of(context, kubeconfig))
                break
            except ValueError as err:  # kr8s: no such context, no credentials
                raise UserError(f"cannot use kube context {name!r}: {err}. List contexts with "
                                "`kubectl config get-contexts`.") from None
            except (FileNotFoundError, PermissionError, KeyError) as err:  # an exec credential plugin failed
                raise UserError(f"cannot load the credentials of kube context {name!r}: {err}. Check that "
                                f"`kubectl --context {name} get ns` works in this shell.") from None
            except (TypeError, AttributeError, UnicodeError, ssl.SSLError, binascii.Error, yaml.YAMLError) as err:
                # kr8s read a kubeconfig entry canarylab's own checks let through: still the user's file to fix
                files = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
                raise UserError(f"the kubeconfig ({files}) has an entry for context {name!r} that the Kubernetes "
                                f"client cannot use ({type(err).__name__}: {str(err)[:120]}). Check it with "
                                f"`kubectl --context {name} get ns`, and fix or regenerate it.") from None
            except _CONNECTION_ERRORS as err:
                message = unreachable_message(name, server, describe(err))
                if not wait:
                    raise ConnectError(message) from None
                delay = backoff.next()
                say(f"{message} Retrying in {delay:g}s (Ctrl-C to stop).")
                await asyncio.sleep(delay)
            except kr8s.ServerError as err:
                raise UserError(f"the API server of context {name!r} refused canarylab: {err}. Check your "
                                f"credentials with `kubectl --context {name} auth whoami`.") from None
        return cls(api, context=context or api.auth.active_context, server=server or api.auth.server,
                   log=log, **kwargs)

    async def request(self, method: str, kind: Kind, namespace: str | None, name: str | None = None, *,
                      body: Any = None) -> Any:
        """One API call with retries, outside the write log and the namespace rule: for the leader lease,
        renewed every two seconds in a namespace the user named with its own flag."""
        return await self._request(method, kind, namespace, name, body=body)

    # ----------------------------------------------------------------------------------- plumbing

    def _now(self) -> float:
        return self.clock.now() if self.clock is not None else time.time()

    def _path(self, kind: Kind, name: str | None = None, subresource: str | None = None) -> str:
        cls = kr8s_class(kind)
        return "/".join(p for p in (cls.endpoint, name, subresource) if p)

    def _guard(self, verb: str, kind: Kind, namespace: str, name: str) -> None:
        what = f"{verb} {kind.kind} {namespace}/{name}" if namespace else f"{verb} {kind.kind} {name}"
        if self.readonly:
            raise ClusterError(f"refused to {what}: the engine runs --readonly")
        reason = self.fence() if self.fence is not None else None
        if reason:
            raise ClusterError(f"refused to {what}: {reason}")
        if self.namespaces is not None and kind.namespaced and namespace not in self.namespaces:
            allowed = ", ".join(sorted(self.namespaces)) or "none"
            raise ClusterError(f"refused to {what}: canarylab only writes in the namespaces you named "
                               f"({allowed}) on context {self.context!r}")

    def _wrote(self, verb: str, kind: Kind, namespace: str, name: str, detail: str = "") -> None:
        self.writes += 1
        where = f"{namespace}/{name}" if namespace else name
        self.log(f"{verb} {kind.kind} {where}{' ' + detail if detail else ''}")

    def _set_reachable(self, reachable: bool, reason: str = "") -> None:
        if reachable and self._unreachable:
            self.log(f"the API server of context {self.context!r} at {self.server} answers again")
        elif not reachable and not self._unreachable:
            self.log(unreachable_message(self.context, self.server, reason) + " Retrying with backoff.")
        self._unreachable = not reachable

    async def _request(self, method: str, kind: Kind, namespace: str | None, name: str | None = None,
                       subresource: str | None = None, *, body: Any = None, params: dict[str, str] | None = None,
                       content_type: str = "application/json") -> Any:
        """One API call with retries; returns the decoded JSON answer."""
        cls = kr8s_class(kind)
        what = f"{method} {kind.kind} {namespace + '/' if namespace else ''}{name or ''}".rstrip()
        backoff = Backoff(*self.backoff)
        kwargs: dict[str, Any] = {"params": params} if params else {}
        if body is not None:
            kwargs["content"] = json.dumps(body)
            kwargs["headers"] = {"Content-Type": content_type}
        for attempt in range(1, self.attempts + 1):
            try:
                async with self.api.call_api(method, version=cls.version, url=self._path(kind, name, subresource),
                                             namespace=namespace if kind.namespaced else None,
                                             **kwargs) as response:
                    answer = response.json()
                self._set_reachable(True)
                return answer
            except kr8s.ServerError as err:
                code = err.response.status_code if err.response is not None else 0
                message = str(err)
                if code == 404:
                    raise NotFound(message or f"{kind.kind} {namespace}/{name} not found") from None
                if code == 409:
                    raise Conflict(message) from None
                if code == 403:
                    raise forbidden(kind, rbac_verb(method, name, params), namespace, subresource,
                                    message) from None
                if code in TRANSIENT_STATUS and attempt < self.attempts:
                    await asyncio.sleep(backoff.next())
                    continue
                raise ClusterError(f"{what}: the API server answered {code}: {message}") from None
            except _CONNECTION_ERRORS as err:
                self._set_reachable(False, describe(err))
                if attempt < self.attempts:
                    await asyncio.sleep(backoff.next())
                    continue
                raise ApiUnreachable(unreachable_message(self.context, self.server, describe(err))) from None
        raise AssertionError("unreachable")  # the loop always returns or raises

    @staticmethod
    def _typed(kind: Kind, obj: Obj) -> Obj:
        # Lists and some proxies leave these out of items; the port promises whole objects.
        obj.setdefault("apiVersion", kind.api_version)
        obj.setdefault("kind", kind.kind)
        return obj

    # ------------------------------------------------------------------------------------- reads

    async def get(self, kind: Kind, namespace: str, name: str) -> Obj | None:
        """The object, or ``None`` when it does not exist."""
        try:
            return self._typed(kind, await self._request("GET", kind, namespace, name))
        except NotFound:
            return None

    async def list(self, kind: Kind, namespace: str | None = None,
                   labels: Mapping[str, str] | None = None) -> list[Obj]:
        """Objects of a kind, in one namespace or all (``None``), optionally matching every label given."""
        items, _ = await self._list(kind, namespace, labels)
        return items

    async def _list(self, kind: Kind, namespace: str | None,
                    labels: Mapping[str, str] | None = None) -> tuple[ObjList, str]:
        params = {"labelSelector": ",".join(f"{k}={v}" for k, v in labels.items())} if labels else None
        answer = await self._request("GET", kind, namespace, params=params)
        items = [self._typed(kind, item) for item in answer.get("items") or []]
        items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        return items, str((answer.get("metadata") or {}).get("resourceVersion") or "")

    # ------------------------------------------------------------------------------------ writes

    async def create(self, obj: Obj) -> Obj:
        """Create; raises :class:`Conflict` when it exists. Returns the stored object (owner refs kept)."""
        kind = kind_of(obj)
        meta = obj.get("metadata") or {}
        if not meta.get("name"):
            raise ValueError(f"{kind.kind}: metadata.name is required")
        namespace = (meta.get("namespace") or "default") if kind.namespaced else ""
        self._guard("create", kind, namespace, meta["name"])
        body = {**obj, "apiVersion": kind.api_version, "kind": kind.kind,
                "metadata": {**meta, **({"namespace": namespace} if kind.namespaced else {})}}
        body["metadata"].pop("resourceVersion", None)
        stored = await self._request("POST", kind, namespace or None, body=body)
        self._wrote("create", kind, namespace, meta["name"])
        return self._typed(kind, stored)

    async def replace(self, obj: Obj) -> Obj:
        """Replace ``metadata``/``spec`` (not ``status``); a set ``metadata.resourceVersion`` must match.

        Without a ``resourceVersion`` the replace is unconditional: the current one is read and sent (custom
        resources refuse an update without it), retrying if someone writes in between.
        """
        kind = kind_of(obj)
        meta = obj.get("metadata") or {}
        namespace = (meta.get("namespace") or "default") if kind.namespaced else ""
        name = meta["name"]
        self._guard("replace", kind, namespace, name)
        for _ in range(5):
            body = {k: v for k, v in obj.items() if k != "status"}
            body["apiVersion"], body["kind"] = kind.api_version, kind.kind
            body["metadata"] = dict(meta)
            if not meta.get("resourceVersion"):
                current = await self.get(kind, namespace, name)
                if current is None:
                    raise NotFound(f'{kind.plural} "{name}" not found in namespace "{namespace}"')
                body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                if "status" in current:  # a PUT to a kind without a status subresource would drop it
                    body["status"] = current["status"]
            try:
                stored = await self._request("PUT", kind, namespace or None, name, body=body)
            except Conflict:
                if meta.get("resourceVersion"):
                    raise
                continue
            self._wrote("replace", kind, namespace, name)
            return self._typed(kind, stored)
        raise Conflict(f"{kind.kind} {namespace}/{name} kept changing while canarylab replaced it")

    async def patch(self, kind: Kind, namespace: str, name: str, patch: Obj) -> Obj:
        """JSON merge patch (RFC 7386) of the main resource; ``status`` in the patch is ignored."""
        self._guard("patch", kind, namespace, name)
        body = {k: v for k, v in patch.items() if k != "status"}
        stored = await self._request("PATCH", kind, namespace, name, body=body,
                                     content_type="application/merge-patch+json")
        self._wrote("patch", kind, namespace, name, ",".join(sorted(body)))
        return self._typed(kind, stored)

    async def patch_status(self, kind: Kind, namespace: str, name: str, status: Obj) -> Obj:
        """JSON merge patch of the ``status`` subresource; a 409 is retried after re-reading the object."""
        self._guard("patch", kind, namespace, name)
        for attempt in range(5):
            try:
                stored = await self._request("PATCH", kind, namespace, name, "status", body={"status": status},
                                             content_type="application/merge-patch+json")
                break
            except Conflict:
                if attempt == 4:
                    raise
                # Someone wrote in between (an admission webhook, a second controller): read, then retry.
                if await self.get(kind, namespace, name) is None:
                    raise NotFound(f'{kind.plural} "{name}" not found in namespace "{namespace}"') from None
        self._wrote("patch", kind, namespace, name, "status")
        return self._typed(kind, stored)

    async def delete(self, kind: Kind, namespace: str, name: str) -> None:
        """Delete; raises :class:`NotFound` when absent."""
        self._guard("delete", kind, namespace, name)
        await self._request("DELETE", kind, namespace or None, name)
        self._wrote("delete", kind, namespace, name)

    # ------------------------------------------------------------------------------------ events

    async def record_event(self, involved: Obj, type: str, reason: str, message: str) -> None:
        """Record a Kubernetes Event about ``involved`` as client-go's recorder does for Flagger.

        Repeats (same object, type, reason and message) bump ``count`` and ``lastTimestamp`` of the first
        Event instead of creating another, so ``kubectl describe canary`` shows ``x10 over 6m``; from the tenth
        distinct message in ten minutes they are ``(combined from similar events)``, and past 25 Events of one
        type per object the rest are dropped (:mod:`canarylab.engine.event_correlator`).
        """
        meta = involved.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        ref = {"apiVersion": involved.get("apiVersion", ""), "kind": involved.get("kind", ""),
               "name": meta.get("name", ""), "namespace": namespace, "uid": meta.get("uid", ""),
               "resourceVersion": meta.get("resourceVersion", "")}
        now = self._now()
        stamp = rfc3339(now)
        obj_key = (namespace, ref["kind"], ref["name"], ref["uid"], ref["apiVersion"])
        # client-go names Events <object>.<unix nanoseconds in hex>.
        d = self._correlator.correlate(obj_key, type, reason, message, now, f"{ref['name']}.{int(now * 1e9):x}")
        if d.skip:
            return
        if d.patch:
            self._guard("patch", EVENT, namespace, d.name)
            try:
                await self._request("PATCH", EVENT, namespace, d.name,
                                    body={"count": d.count, "lastTimestamp": stamp, "message": d.message},
                                    content_type="application/merge-patch+json")
                self._wrote("patch", EVENT, namespace, d.name, "count")
                return
            except NotFound:  # expired (Events live an hour): client-go creates it again under the same name
                pass
        event: Obj = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": d.name, "namespace": namespace},
            "involvedObject": ref, "reason": reason, "message": d.message, "type": type,
            "source": {"component": "flagger"}, "reportingComponent": "flagger", "reportingInstance": "canarylab",
            "firstTimestamp": rfc3339(d.first), "lastTimestamp": stamp, "count": d.count,
        }
        try:
            await self.create(event)
        except Conflict:  # two Events in the same nanosecond: keep the name unique
            event["metadata"]["name"] = f"{d.name}{int(now * 1e9) % 16:x}"
            await self.create(event)

    # ------------------------------------------------------------------------------------ watches

    async def watch(self, kind: Kind, namespace: str | None = None) -> AsyncIterator[WatchEvent]:
        """``ADDED`` for every existing object, then live changes; survives dropped watches and outages.

        A dropped connection resumes from the last ``resourceVersion`` seen (bookmarks keep it fresh), so
        nothing is missed or repeated; ``410 Gone`` relists and sends only what changed meanwhile
        (``DELETED`` for objects that vanished).
        """
        known: dict[tuple[str, str], Obj] = {}
        rv = ""
        backoff = Backoff(*self.backoff)
        last_error = ""
        while True:
            try:
                if not rv:
                    items, rv = await self._list(kind, namespace)
                    for event in self._diff(known, items):
                        yield event
                async for type, obj in self._stream(kind, namespace, rv):
                    rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                    if type == "BOOKMARK":
                        continue
                    key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
                    if type == "DELETED":
                        known.pop(key, None)
                    else:
                        known[key] = obj
                    yield WatchEvent(type, self._typed(kind, obj))  # type: ignore[arg-type]
                backoff.reset()  # the server ended the watch (timeout): resume at once
            except _Gone:
                rv = ""
            except ApiUnreachable:
                await asyncio.sleep(backoff.next())
            except _CONNECTION_ERRORS as err:
                self._set_reachable(False, describe(err))
                await asyncio.sleep(backoff.next())
            except ClusterError as err:  # e.g. 403 or a missing CRD: say so once, keep trying slowly
                message = str(err)
                if isinstance(err, NotFound):
                    message = (f"the API server of context {self.context!r} does not serve {kind.plural}."
                               f"{kind.group or 'core'}/{kind.version}: is its CRD installed? (`canarylab up` "
                               "installs Flagger's and the router's CRDs)")
                if message != last_error:
                    self.log(f"{message} (retrying)")
                    last_error = message
                await asyncio.sleep(backoff.next())

    def _diff(self, known: dict[tuple[str, str], Obj], items: ObjList) -> EventList:
        events: EventList = []
        seen = set()
        for obj in items:
            key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
            seen.add(key)
            old = known.get(key)
            if old is None:
                events.append(WatchEvent("ADDED", obj))
            elif old["metadata"].get("resourceVersion") != obj["metadata"].get("resourceVersion"):
                events.append(WatchEvent("MODIFIED", obj))
            known[key] = obj
        for key in [k for k in known if k not in seen]:
            events.append(WatchEvent("DELETED", known.pop(key)))
        return events

    async def _stream(self, kind: Kind, namespace: str | None, rv: str) -> AsyncIterator[tuple[str, Obj]]:
        cls = kr8s_class(kind)
        params = {"watch": "true", "resourceVersion": rv, "allowWatchBookmarks": "true",
                  "timeoutSeconds": str(WATCH_TIMEOUT)}
        # Read timeout above the server's own, so a silently dead connection is noticed.
        timeout = httpx.Timeout(10.0, read=WATCH_TIMEOUT + 30.0)
        try:
            async with self.api.call_api("GET", version=cls.version, url=cls.endpoint, stream=True,
                                         namespace=namespace if kind.namespaced else None,
                                         params=params, timeout=timeout) as response:
                self._set_reachable(True)
                async for line in response.aiter_lines():
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        if obj.get("code") == 410:
                            raise _Gone()
                        raise ClusterError(f"watch {kind.kind}: {obj.get('message', obj)}")
                    yield event["type"], obj
        except kr8s.ServerError as err:
            if err.response is not None and err.response.status_code == 410:
                raise _Gone() from None
            if err.response is not None and err.response.status_code in TRANSIENT_STATUS:
                raise ApiUnreachable(str(err)) from None
            if err.response is not None and err.response.status_code == 403:
                raise forbidden(kind, "watch", namespace, None, str(err)) from None
            raise ClusterError(f"watch {kind.kind}: {err}") from None


def log_to_logger(line: str) -> None:
    """The default ``log``: the ``canarylab.kube`` logger at INFO."""
    log.info(line)
