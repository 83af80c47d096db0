"""The Cluster port in memory: the reference implementation that the engine's tests and the simulated lab use.

:class:`MemoryCluster` has the Kubernetes semantics the engine relies on: ``resourceVersion`` from one global
counter, ``metadata.generation`` bumped on ``spec`` changes, uid and ``creationTimestamp``, optimistic
concurrency on replace, JSON merge patch, the status subresource, real ``v1`` Events with repeat aggregation,
watches (``ADDED`` for what exists, then live changes), deletion with finalizers (``deletionTimestamp`` first,
gone when the last finalizer is removed), owner-reference garbage collection, and a synchronous listener hook
so in-process controllers (the simulator) react to a write before it returns.

Objects are copied on the way in and on the way out, so callers can never alias the store.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import marshal
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping

from canarylab.engine.documents import copy_json, merge_patch, rfc3339, type_name
from canarylab.engine.kinds import DEPLOYMENT, EVENT, Kind, Obj, kind_of
from canarylab.engine.ports import (
    Clock,
    ClusterError,
    Conflict,
    NotFound,
    WatchEvent,
    WatchType,
)

__all__ = ["MemoryCluster", "deployment_ready_status"]

# --------------------------------------------------------------------------------------------- storage


def _freeze(obj: Obj) -> bytes:
    """``obj`` marshal'd; values YAML may produce that are not JSON (dates) are stored as strings."""
    try:
        return marshal.dumps(obj)
    except ValueError:
        return marshal.dumps(json.loads(json.dumps(obj, default=str)))


def deployment_ready_status(obj: Obj) -> Obj:
    """The status of a Deployment whose pods all became ready at once (replicas from ``spec``)."""
    spec = obj.get("spec") or {}
    replicas = int(spec.get("replicas", 1))
    meta = obj.get("metadata", {})
    status: Obj = {
        "observedGeneration": meta.get("generation", 1),
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
             "message": "Deployment has minimum availability."},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
             "message": f'ReplicaSet "{meta.get("name", "")}" has successfully progressed.'},
        ],
    }  # fmt: skip
    if replicas == 0:
        # Kubernetes omits zero counters from a scaled-down Deployment's status.
        for key in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas"):
            del status[key]
    return status


def _finalized(old: Obj, new: Obj) -> bool:
    """A write that removes the last finalizer of an object being deleted: Kubernetes deletes it then."""
    old_meta, new_meta = old["metadata"], new["metadata"]
    return bool(old_meta.get("deletionTimestamp") and old_meta.get("finalizers") and not new_meta.get("finalizers"))


def _labels_match(obj: Obj, labels: Mapping[str, str] | None) -> bool:
    if not labels:
        return True
    have = obj.get("metadata", {}).get("labels") or {}
    return all(have.get(k) == v for k, v in labels.items())


Key = tuple[str, str, str]  # (kind, namespace, name)
ObjList = list[Obj]  # an alias: inside MemoryCluster, `list` is the port method
Listener = Callable[[WatchEvent], None]


class _SystemClock:
    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


# ------------------------------------------------------------------------------------------- cluster


class MemoryCluster:
    """An in-memory Kubernetes API for the kinds in :mod:`canarylab.engine.kinds`.

    ``clock`` stamps ``creationTimestamp`` and Event times (defaults to wall time). With
    ``instant_ready=True`` every Deployment write also sets a ready status derived from its spec, so engine
    tests need no deployment controller. Every write has a synchronous twin (``create_now``, ``patch_now``,
    ...) for listeners, which cannot await.
    """

    def __init__(self, clock: Clock | None = None, *, instant_ready: bool = False) -> None:
        self.clock: Clock = clock if clock is not None else _SystemClock()
        self.instant_ready = instant_ready
        # Objects are stored marshal'd: a read is one C-level loads into a private copy, and a store of
        # thousands of objects adds nothing for the cyclic garbage collector to scan.
        self._objects: dict[Key, bytes] = {}
        self._rv = itertools.count(1)
        self._uids = itertools.count(1)
        # uids: random high 64 bits, a counter below; formatted as str(uuid.UUID(int=...)) would, only cheaper
        self._uid_prefix = str(uuid.UUID(int=uuid.uuid4().int & ~((1 << 64) - 1)))[:19]
        # A watcher's queue holds marshal'd objects, decoded when the watcher takes them: a burst of writes
        # (a thousand canaries ticking at the same virtual instant) then queues bytes, which the cyclic
        # garbage collector never scans, instead of thousands of dicts it would promote and rescan.
        self._watchers: list[tuple[str, str | None, asyncio.Queue[tuple[WatchType, bytes]]]] = []
        self._kinds: dict[str, dict[Key, None]] = {}  # kind -> its keys (an ordered set), for list_now
        self._listeners: list[Listener] = []
        self._pending: list[WatchEvent] = []
        self._dispatching = False
        self._event_index: dict[tuple[str, ...], str] = {}  # aggregation key -> Event name
        # For the garbage collector: live uids, and which objects name which owner uid.
        self._by_uid: dict[str, Key] = {}
        self._owners: dict[Key, tuple[str, ...]] = {}
        self._dependents: dict[str, set[Key]] = {}
        self.writes = 0
        """How many writes the cluster accepted (a cheap measure for benchmarks and tests)."""

    # ----------------------------------------------------------------------------------- reads

    def get_now(self, kind: Kind, namespace: str, name: str) -> Obj | None:
        """Synchronous :meth:`get`."""
        data = self._objects.get(self._key(kind, namespace, name))
        return marshal.loads(data) if data is not None else None

    def list_now(
        self, kind: Kind, namespace: str | None = None, labels: Mapping[str, str] | None = None
    ) -> list[Obj]:
        """Synchronous :meth:`list`, sorted by namespace and name."""
        out = []
        for key in self._keys(kind, namespace):
            obj = marshal.loads(self._objects[key])
            if _labels_match(obj, labels):
                out.append(obj)
        return out

    def _keys(self, kind: Kind, namespace: str | None) -> list[Key]:
        """The keys of one kind (in a namespace, or all), sorted by namespace and name."""
        keys = self._kinds.get(kind.kind, {})
        if namespace is None or not kind.namespaced:
            return sorted(keys)
        return sorted(k for k in keys if k[1] == namespace)

    async def get(self, kind: Kind, namespace: str, name: str) -> Obj | None:
        """The object, or ``None`` when it does not exist."""
        return self.get_now(kind, namespace, name)

    async def list(
        self, kind: Kind, namespace: str | None = None, labels: Mapping[str, str] | None = None
    ) -> list[Obj]:
        """Objects of a kind, in one namespace or all (``None``), optionally matching every label given."""
        return self.list_now(kind, namespace, labels)

    # ---------------------------------------------------------------------------------- writes

    def create_now(self, obj: Obj) -> Obj:
        """Synchronous :meth:`create`."""
        return self._create(copy_json(obj))

    def _create(self, new: Obj) -> Obj:
        kind = kind_of(new)
        new["apiVersion"] = kind.api_version
        meta = new.setdefault("metadata", {})
        name = meta.get("name")
        if not name:
            raise ValueError(f"{kind.kind}: metadata.name is required")
        if kind.namespaced:
            meta.setdefault("namespace", "default")
        else:
            meta.pop("namespace", None)
        key = self._key(kind, meta.get("namespace", ""), name)
        if key in self._objects:
            raise Conflict(f'{kind.plural} "{name}" already exists')
        n = next(self._uids)
        meta["uid"] = uid = f"{self._uid_prefix}{n >> 48 & 0xFFFF:04x}-{n & 0xFFFFFFFFFFFF:012x}"
        self._by_uid[uid] = key
        meta["creationTimestamp"] = rfc3339(self.clock.now())
        meta["generation"] = 1
        meta.pop("resourceVersion", None)
        return self._store(key, new, "ADDED")

    def replace_now(self, obj: Obj) -> Obj:
        """Synchronous :meth:`replace`."""
        kind = kind_of(obj)
        meta = obj.get("metadata", {})
        key = self._key(kind, meta.get("namespace", "default") if kind.namespaced else "", meta["name"])
        old = self._require(key, kind)
        rv = meta.get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise Conflict(self._stale(kind, meta["name"]))
        new = copy_json(obj)
        new["apiVersion"] = kind.api_version
        new.pop("status", None)
        if "status" in old:
            new["status"] = copy_json(old["status"])
        self._keep_system_fields(old, new)
        if _finalized(old, new):
            return self._remove(key, new)
        return self._store(key, new, "MODIFIED")

    def patch_now(self, kind: Kind, namespace: str, name: str, patch: Obj) -> Obj:
        """Synchronous :meth:`patch`."""
        key = self._key(kind, namespace, name)
        old = self._require(key, kind)
        rv = (patch.get("metadata") or {}).get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise Conflict(self._stale(kind, name))
        body = {k: v for k, v in patch.items() if k != "status"}
        # ``old`` is a private copy (see _require), so the merge may share its subtrees; merge_patch builds
        # new dicts and copies lists, so nothing of ``patch`` is shared either
        new = merge_patch(old, body)
        new["metadata"] = dict(new.get("metadata") or {})
        self._keep_system_fields(old, new)
        if _finalized(old, new):
            return self._remove(key, new)
        return self._store(key, new, "MODIFIED")

    def patch_status_now(self, kind: Kind, namespace: str, name: str, status: Obj) -> Obj:
        """Synchronous :meth:`patch_status`."""
        key = self._key(kind, namespace, name)
        old = self._require(key, kind)
        new = old  # a private copy already (see _require)
        new["status"] = merge_patch(old.get("status") or {}, status)
        return self._store(key, new, "MODIFIED", status_only=True)

    def delete_now(self, kind: Kind, namespace: str, name: str) -> None:
        """Synchronous :meth:`delete`."""
        key = self._key(kind, namespace, name)
        old = self._require(key, kind)
        meta = old["metadata"]
        if meta.get("finalizers"):
            # Kubernetes marks the object and waits for its finalizers; deleting it again changes nothing.
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = rfc3339(self.clock.now())
                meta["deletionGracePeriodSeconds"] = 0
                # as the API server does: controllers must see that the object changed its meaning
                meta["generation"] = int(meta.get("generation", 1)) + 1
                self._store(key, old, "MODIFIED", status_only=True)
            return
        self._remove(key, old)

    def _remove(self, key: Key, old: Obj) -> Obj:
        """Drop an object for good (``DELETED``), then garbage-collect what it owned."""
        del self._objects[key]
        self._kinds[key[0]].pop(key, None)
        meta = old["metadata"]
        meta["resourceVersion"] = str(next(self._rv))
        self.writes += 1
        uid = meta.get("uid")
        self._by_uid.pop(uid, None)
        for owner in self._owners.pop(key, ()):
            self._dependents.get(owner, set()).discard(key)
        data = _freeze(old)
        self._emit("DELETED", old, data)
        if uid in self._dependents:
            self._collect(uid)
        return marshal.loads(data)

    def _collect(self, owner_uid: str) -> None:
        """The garbage collector (background propagation): dependents of a removed owner are deleted,
        unless another owner of theirs still exists, in which case only the dangling reference goes."""
        for key in sorted(self._dependents.pop(owner_uid, ())):
            data = self._objects.get(key)
            if data is None:
                continue
            dependent = marshal.loads(data)
            refs = dependent["metadata"].get("ownerReferences") or []
            alive = [r for r in refs if r.get("uid") != owner_uid and r.get("uid") in self._by_uid]
            kind = kind_of(dependent)
            if alive:
                self.patch_now(kind, key[1], key[2], {"metadata": {
                    "ownerReferences": [r for r in refs if r.get("uid") != owner_uid]}})
            else:
                self.delete_now(kind, key[1], key[2])

    async def create(self, obj: Obj) -> Obj:
        """Create; raises :class:`Conflict` when it exists. Returns the stored object."""
        return self.create_now(obj)

    async def replace(self, obj: Obj) -> Obj:
        """Replace ``metadata``/``spec`` (not ``status``); a set ``metadata.resourceVersion`` must match."""
        return self.replace_now(obj)

    async def patch(self, kind: Kind, namespace: str, name: str, patch: Obj) -> Obj:
        """JSON merge patch (RFC 7386) of the main resource; ``status`` in the patch is ignored."""
        return self.patch_now(kind, namespace, name, patch)

    async def patch_status(self, kind: Kind, namespace: str, name: str, status: Obj) -> Obj:
        """JSON merge patch of the ``status`` subresource."""
        return self.patch_status_now(kind, namespace, name, status)

    async def delete(self, kind: Kind, namespace: str, name: str) -> None:
        """Delete; raises :class:`NotFound` when absent."""
        self.delete_now(kind, namespace, name)

    # ---------------------------------------------------------------------------------- events

    def record_event_now(self, involved: Obj, type: str, reason: str, message: str) -> None:
        """Synchronous :meth:`record_event`."""
        meta = involved.get("metadata", {})
        namespace = meta.get("namespace", "default")
        ref = {
            "apiVersion": involved.get("apiVersion", ""),
            "kind": involved.get("kind", ""),
            "name": meta.get("name", ""),
            "namespace": namespace,
            "uid": meta.get("uid", ""),
            "resourceVersion": meta.get("resourceVersion", ""),
        }
        stamp = rfc3339(self.clock.now())
        # Kubernetes' recorder aggregates identical events (same object, type, reason, message) into one
        # with a count, which is what `kubectl describe` shows as "x10 over 6m".
        agg = (namespace, ref["kind"], ref["name"], ref["uid"], type, reason, message)
        existing_name = self._event_index.get(agg)
        if existing_name is not None:
            data = self._objects.get(self._key(EVENT, namespace, existing_name))
            if data is not None:
                existing = marshal.loads(data)
                self.patch_now(EVENT, namespace, existing_name, {
                    "count": int(existing.get("count", 1)) + 1, "lastTimestamp": stamp,
                })  # fmt: skip
                return
        event_name = f"{ref['name']}.{next(self._uids):016x}"  # unique in the cluster, as kubectl names look
        event: Obj = {
            "apiVersion": EVENT.api_version,
            "kind": EVENT.kind,
            "metadata": {"name": event_name, "namespace": namespace},
            "involvedObject": ref,
            "reason": reason,
            "message": message,
            "type": type,
            "count": 1,
            "source": {"component": "flagger"},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "reportingComponent": "flagger",
        }
        self._event_index[agg] = event_name
        self._create(event)

    async def record_event(self, involved: Obj, type: str, reason: str, message: str) -> None:
        """Record a Kubernetes Event about ``involved`` (type ``Normal`` or ``Warning``)."""
        self.record_event_now(involved, type, reason, message)

    def events_for(self, involved: Obj) -> ObjList:
        """The Events recorded about one object, oldest first (by creation order)."""
        meta = involved.get("metadata", {})
        # The kind index keeps creation order: the order Flagger emitted them.
        namespace = meta.get("namespace", "default")
        events = [marshal.loads(self._objects[key]) for key in self._kinds.get(EVENT.kind, {}) if key[1] == namespace]
        return [
            e for e in events
            if e["involvedObject"].get("kind") == involved.get("kind")
            and e["involvedObject"].get("name") == meta.get("name")
        ]  # fmt: skip

    # ---------------------------------------------------------------------------------- watches

    async def watch(self, kind: Kind, namespace: str | None = None) -> AsyncIterator[WatchEvent]:
        """Changes of a kind from now on: ``ADDED`` for every existing object first, then live changes.

        The watch starts when iteration starts; each watcher has its own queue, so a slow one loses nothing.
        """
        queue: asyncio.Queue[tuple[WatchType, bytes]] = asyncio.Queue()
        for key in self._keys(kind, namespace):
            queue.put_nowait(("ADDED", self._objects[key]))
        entry = (kind.kind, namespace, queue)
        self._watchers.append(entry)
        try:
            while True:
                type, data = await queue.get()
                yield WatchEvent(type, marshal.loads(data))
        finally:
            self._watchers.remove(entry)

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` synchronously for every change of every kind; returns a function that removes it.

        A listener may write to the cluster (with the ``*_now`` methods); those changes are delivered after
        the current one, so every listener sees every change in ``resourceVersion`` order.
        """
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    # ---------------------------------------------------------------------------------- internals

    @staticmethod
    def _key(kind: Kind, namespace: str | None, name: str) -> Key:
        return (kind.kind, (namespace or "") if kind.namespaced else "", name)

    def _require(self, key: Key, kind: Kind) -> Obj:
        data = self._objects.get(key)
        if data is None:
            where = f' in namespace "{key[1]}"' if key[1] else ""
            raise NotFound(f'{kind.plural} "{key[2]}" not found{where}')
        return marshal.loads(data)

    @staticmethod
    def _stale(kind: Kind, name: str) -> str:
        return (f'Operation cannot be fulfilled on {kind.plural} "{name}": the object has been modified; '
                "please apply your changes to the latest version and try again")

    @staticmethod
    def _keep_system_fields(old: Obj, new: Obj) -> None:
        meta = new.setdefault("metadata", {})
        old_meta = old["metadata"]
        for name in ("name", "namespace", "uid", "creationTimestamp", "generation", "deletionTimestamp",
                     "deletionGracePeriodSeconds"):
            if name in old_meta:
                meta[name] = old_meta[name]
        if (old.get("spec") != new.get("spec")) or (
            "spec" not in old and old.get("data") != new.get("data")
        ):
            meta["generation"] = int(old_meta.get("generation", 1)) + 1

    def _store(self, key: Key, obj: Obj, type: WatchType, *, status_only: bool = False) -> Obj:
        """Store ``obj`` (a private object no caller holds) and hand it back as the caller's copy."""
        for part in ("spec", "status"):
            # What the API server's schema validation refuses (HTTP 422), so no watcher ever sees it.
            if not isinstance(obj.get(part, {}), dict):
                raise ClusterError(f'{key[0]} "{key[2]}" is invalid: {part}: Invalid value: '
                                   f'"{type_name(obj[part])}": {part} in body must be of type object')
        if self.instant_ready and key[0] == DEPLOYMENT.kind and not status_only:
            obj["status"] = deployment_ready_status(obj)
        meta = obj["metadata"]
        meta["resourceVersion"] = str(next(self._rv))
        self._index_owners(key, meta)
        try:
            data = marshal.dumps(obj)
        except ValueError:  # a value YAML produced that is not JSON (a date): stored, and returned, as text
            data = _freeze(obj)
            obj = marshal.loads(data)
        if key not in self._objects:
            self._kinds.setdefault(key[0], {})[key] = None
        self._objects[key] = data
        self.writes += 1
        self._emit(type, obj, data)
        # Every write path builds ``obj`` from private copies (``_require``, ``copy_json``), and the store,
        # the watchers and the listeners only ever see ``data``: the caller may keep ``obj`` without a copy.
        return obj

    def _index_owners(self, key: Key, meta: Obj) -> None:
        refs = meta.get("ownerReferences")
        if not refs and key not in self._owners:
            return  # most writes: nothing owns this object, now or before
        if not refs:
            owners: tuple[str, ...] = ()
        elif len(refs) == 1:  # the usual case, without a generator
            owners = (str(refs[0]["uid"]),) if refs[0].get("uid") else ()
        else:
            owners = tuple(str(r["uid"]) for r in refs if r.get("uid"))
        before = self._owners.get(key, ())
        if owners == before:
            return
        for owner in before:
            if owner not in owners and owner in self._dependents:
                self._dependents[owner].discard(key)
        for owner in owners:
            self._dependents.setdefault(owner, set()).add(key)
        if owners:
            self._owners[key] = owners
        else:
            self._owners.pop(key, None)

    def _emit(self, type: WatchType, obj: Obj, data: bytes) -> None:
        kind, ns = obj["kind"], obj["metadata"].get("namespace")
        for wkind, wns, queue in self._watchers:
            if wkind == kind and (wns is None or wns == ns):
                queue.put_nowait((type, data))
        if not self._listeners:
            return
        self._pending.append(WatchEvent(type, marshal.loads(data)))
        if self._dispatching:
            return  # a listener wrote: the outer loop delivers this change after the current one
        self._dispatching = True
        try:
            while self._pending:
                event = self._pending.pop(0)
                for listener in list(self._listeners):
                    listener(event)
        finally:
            self._dispatching = False
            self._pending.clear()

    # ---------------------------------------------------------------------------------- conveniences

    def load(self, objects: Iterable[Obj]) -> ObjList:
        """Create every object (e.g. ``manifests.seed_lab()``); returns the stored copies."""
        return [self.create_now(obj) for obj in objects]


# ------------------------------------------------------------------------------------------- metrics
