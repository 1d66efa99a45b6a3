"""The HTTP client of the Berth API, with failover across masters.

Every master serves the whole API, so a request that one master cannot serve (it
is down, or answers 503 while it has no leader or is catching up) is sent to the
next. Each master is tried at most once per request, so a call is bounded by
roughly `len(servers) * connect_timeout` when all are down.

A write is only re-sent elsewhere when the first master surely did not act on it
(the connection was never made, or it answered 503). A write whose connection
broke after it was sent, or that a master answered with 503 reason "OutcomeUnknown"
(proposed, commit not seen), is reported, not replayed, because it may yet be
committed. Reads and `apply` (which converges to the same result when repeated)
are re-sent after any transport failure.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
import urllib3.exceptions
import yaml

from berth.errors import ApiError, BerthError, UnknownKind, Unreachable
from berth.kinds import Kind, lookup_kind
from berth.objects import Obj
from berth.pod_session import PodSession

__all__ = ["ApiError", "BerthError", "Client", "UnknownKind", "Unreachable", "kind_info"]

DEFAULT_NAMESPACE = "default"
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_READ_CHUNK = 64 * 1024

KindRef = str | Kind


def _dry(dry_run: bool) -> dict[str, str]:
    return {"dryRun": "All"} if dry_run else {}


def _warnings(response: requests.Response) -> list[str]:
    """The texts of an answer's `Warning: 299 - "text"` headers."""
    raw = response.raw.headers.getlist("Warning") if hasattr(response.raw, "headers") else []
    texts = []
    for value in raw or ([response.headers["Warning"]] if "Warning" in response.headers else []):
        code, _, rest = value.partition(" ")
        if code == "299":
            texts.append(rest.partition(" ")[2].strip().strip('"'))
    return texts


def normalize_server(url: str) -> str:
    """Accept `host:port` as users type it; the client always needs a scheme (masters serve HTTPS only)."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "https://" + url
    return url


def split_servers(values: Iterable[str] | str | None) -> list[str]:
    """`--server a,b --server c` and `BERTH_SERVER=a,b` both mean an ordered list."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for value in values:
        for part in str(value).split(","):
            if part.strip():
                url = normalize_server(part)
                if url not in out:
                    out.append(url)
    return out


def kind_info(kind: KindRef) -> Kind:
    """Any name kubectl users type (po, deploy, svc, Pod, pods) to the registry entry."""
    if isinstance(kind, Kind):
        return kind
    info = lookup_kind(kind)
    if info is None:
        raise UnknownKind(kind)
    return info


def _never_sent(err: requests.RequestException) -> bool:
    """True when the request cannot have reached the server: safe to send a write elsewhere (a TLS
    error is the handshake's, before any byte of the request)."""
    if isinstance(err, requests.ConnectTimeout | requests.exceptions.SSLError):
        return True
    reason: Any = err.args[0] if err.args else None
    if isinstance(reason, urllib3.exceptions.MaxRetryError):
        reason = reason.reason
    # NewConnectionError (refused, unreachable, DNS) is a subclass of ConnectTimeoutError.
    return isinstance(reason, urllib3.exceptions.ConnectTimeoutError)


def _short(err: BaseException) -> str:
    """A few words for a transport error; requests nests urllib3's reasons several deep."""
    text = str(err)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return ("TLS: the server's certificate is not trusted (certificate verify failed): give the "
                "cluster's CA as certificate-authority")
    if "doesn't match" in text or "Hostname mismatch" in text:
        return "TLS: the server's certificate is not for this address (hostname mismatch)"
    if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text:
        return "TLS: the server does not speak TLS there"
    if isinstance(err, requests.ConnectTimeout | urllib3.exceptions.ConnectTimeoutError) and (
        "refused" not in text
    ):
        return "connect timed out"
    if isinstance(err, requests.ReadTimeout | urllib3.exceptions.ReadTimeoutError | TimeoutError):
        return "timed out waiting for the answer"
    for needle, words in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "unknown host"),
        ("nodename nor servname", "unknown host"),
        ("No route to host", "no route to host"),
        ("Network is unreachable", "network unreachable"),
        ("Connection reset", "connection reset by the server"),
        ("IncompleteRead", "connection closed by the server"),
        ("Connection broken", "connection closed by the server"),
        ("RemoteDisconnected", "connection closed by the server"),
        ("Connection aborted", "connection closed by the server"),
    ):
        if needle in text:
            return words
    return text if len(text) < 200 else text[:200] + "..."


class UnreachableMemory:
    """Which masters could not be reached lately, kept in a small file, so the next command starts
    with one that answers instead of waiting out a dead one's connect timeout every time."""

    def __init__(self, path: Path, seconds: float = 60.0) -> None:
        self.path = path
        self.seconds = seconds
        self._marks: dict[str, float] | None = None  # read from the file once, then kept here

    def _current(self) -> dict[str, float]:
        if self._marks is None:
            try:
                data = json.loads(self.path.read_text())
            except (OSError, ValueError):
                data = {}
            now = time.time()
            data = data if isinstance(data, dict) else {}
            self._marks = {url: until for url, until in data.items()
                           if isinstance(until, int | float) and until > now}
        return self._marks

    def _write(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self._current()))
        except OSError:
            pass  # a memory only: without it, the next command just tries in order

    def first_alive(self, servers: list[str]) -> int:
        marks = self._current()
        return next((i for i, url in enumerate(servers) if url not in marks), 0)

    def mark(self, server: str) -> None:
        self._current()[server] = time.time() + self.seconds
        self._write()

    def mark_alive(self, server: str) -> None:
        """Called after every answer: a file write only when the server was marked."""
        if self._current().pop(server, None) is not None:
            self._write()


class Client:
    """One requests.Session shared by every call, so connections to masters are reused. Masters are
    verified with `ca_file` (the cluster's CA; None: the system's CAs, which do not know it)."""

    def __init__(
        self,
        servers: Sequence[str] | str,
        token: str | None = None,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        connect_timeout: float = 2.0,
        read_timeout: float = 30.0,
        watch_idle_timeout: float = 30.0,
        session: requests.Session | None = None,
        user_agent: str = "berth-cli/0.1",
        on_warning: Callable[[str], None] | None = None,
        unreachable: UnreachableMemory | None = None,
        ca_file: str | None = None,
    ) -> None:
        self.servers: list[str] = split_servers(servers)
        if not self.servers:
            raise BerthError("no Berth server configured (use --server or BERTH_SERVER)")
        self.token = token
        self.namespace = namespace
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        # The master sends bookmarks every few seconds; this long a silence means it is gone.
        self.watch_idle_timeout = watch_idle_timeout
        self.session = session or requests.Session()
        # given with each request: a session's own `verify` loses to REQUESTS_CA_BUNDLE in the environment
        self.verify: str | bool = ca_file or True
        self.session.headers["User-Agent"] = user_agent
        self.session.headers["Accept"] = "application/json"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self._preferred = 0  # the master that last answered: try it first next time
        self.on_warning = on_warning  # told each API warning (HTTP `Warning: 299 - "..."`)
        self.unreachable = unreachable
        if unreachable is not None:  # a short-lived client (the CLI) starts where the last one ended
            self._preferred = unreachable.first_alive(self.servers)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def current_server(self) -> str:
        return self.servers[self._preferred]

    # --- transport -----------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        data: str | bytes | None = None,
        content_type: str | None = None,
        stream: bool = False,
        read_timeout: float | None = None,
        replayable: bool | None = None,
        server: str | None = None,
    ) -> requests.Response:
        """Send to the masters in turn until one answers; raise ApiError for a 4xx/5xx answer.

        `replayable` says whether the request may be re-sent after the connection broke
        mid-request; by default only reads may. `server`: only that master (a session lives
        on the one that opened it).
        """
        method = method.upper()
        if replayable is None:
            replayable = method in _IDEMPOTENT_METHODS
        headers: dict[str, str] = {}
        if json_body is not None:
            data = json.dumps(json_body)
            content_type = content_type or "application/json"
        if content_type:
            headers["Content-Type"] = content_type
        clean_params = {k: v for k, v in (params or {}).items() if v is not None}
        timeout = (self.connect_timeout, read_timeout or self.read_timeout)

        attempts: list[str] = []
        unavailable: ApiError | None = None
        servers = self.servers if server is None else [server]
        preferred = self._preferred if server is None else 0
        count = len(servers)
        for step in range(count):
            index = (preferred + step) % count
            server = servers[index]
            try:
                response = self.session.request(
                    method,
                    server + path,
                    params=clean_params,
                    data=data,
                    headers=headers,
                    timeout=timeout,
                    stream=stream,
                    verify=self.verify,
                )
            except requests.RequestException as err:
                attempts.append(f"{server}: {_short(err)}")
                if self.unreachable is not None and _never_sent(err):
                    self.unreachable.mark(server)
                if replayable or _never_sent(err):
                    continue
                raise Unreachable(
                    f"lost the connection to {server} during {method} {path} "
                    f"({_short(err)}); it may or may not have been applied",
                    attempts,
                ) from None
            if response.status_code == 503:
                unavailable = self._error(response, server)
                if unavailable.reason == "OutcomeUnknown" and not replayable:
                    # The master proposed the write but saw no commit: it may yet apply.
                    raise unavailable
                attempts.append(f"{server}: 503 {unavailable.reason}: {unavailable.message}")
                continue
            if self.unreachable is not None:
                self.unreachable.mark_alive(server)
            if servers is self.servers:
                self._preferred = index
            if response.status_code >= 400:
                raise self._error(response, server)
            if self.on_warning is not None:
                for warning in _warnings(response):
                    self.on_warning(warning)
            return response

        if unavailable is not None:
            raise unavailable
        raise Unreachable(
            "cannot reach any Berth server (" + "; ".join(attempts) + ")", attempts
        )

    @staticmethod
    def _error(response: requests.Response, server: str) -> ApiError:
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        finally:
            response.close()
        return ApiError.from_body(
            response.status_code, body, (response.reason or "Error").replace(" ", ""), server
        )

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        try:
            return response.json() if response.content else None
        except ValueError:
            raise BerthError(
                f"{method} {path}: the server answered {response.status_code} with a body "
                "that is not JSON"
            ) from None

    # --- paths ---------------------------------------------------------------------------

    def _ns(self, info: Kind, namespace: str | None) -> str | None:
        if not info.namespaced:
            return None
        return namespace or self.namespace

    @staticmethod
    def collection_path(info: Kind, namespace: str | None) -> str:
        """Namespaced kinds without a namespace give the all-namespaces list path."""
        if namespace is None:
            return f"/api/v1/{info.plural}"
        return f"/api/v1/namespaces/{quote(namespace, safe='')}/{info.plural}"

    def object_path(self, kind: KindRef, name: str, namespace: str | None = None) -> str:
        info = kind_info(kind)
        base = self.collection_path(info, self._ns(info, namespace))
        return f"{base}/{quote(name, safe='')}"

    def _target(self, obj: Mapping[str, Any], namespace: str | None) -> tuple[Kind, str | None]:
        if not isinstance(obj, Mapping) or not isinstance(obj.get("kind"), str):
            raise BerthError("an object needs a string `kind`")
        info = kind_info(obj["kind"])
        meta = obj.get("metadata") or {}
        return info, self._ns(info, namespace or meta.get("namespace"))

    @staticmethod
    def _name(obj: Mapping[str, Any]) -> str:
        name = (obj.get("metadata") or {}).get("name")
        if not isinstance(name, str) or not name:
            raise BerthError(f"a {obj.get('kind', 'object')} needs metadata.name")
        return name

    # --- the API -------------------------------------------------------------------------

    def list(
        self,
        kind: KindRef,
        namespace: str | None = None,
        *,
        all_namespaces: bool = False,
        label_selector: str | None = None,
        consistent: bool = False,
        field_selector: str | None = None,
    ) -> Obj:
        """The List object; `namespace=None` means the client's default namespace."""
        info = kind_info(kind)
        ns = None if all_namespaces else self._ns(info, namespace)
        params = {"labelSelector": label_selector or None, "fieldSelector": field_selector or None,
                  "consistent": "true" if consistent else None}
        return self._json("GET", self.collection_path(info, ns), params=params)

    def get(
        self, kind: KindRef, name: str, namespace: str | None = None, *, consistent: bool = False
    ) -> Obj:
        params = {"consistent": "true"} if consistent else None
        return self._json("GET", self.object_path(kind, name, namespace), params=params)

    def pod_log(self, name: str, namespace: str | None = None, *, container: str | None = None,
                follow: bool = False, tail: int | None = None, timestamps: bool = False,
                since_seconds: int | None = None, previous: bool = False) -> Iterator[bytes]:
        """The container's output as it comes (until it ends, with `follow`): its current run's, or
        with `previous` the run before (kubectl's --previous)."""
        params = {"container": container, "follow": "true" if follow else None,
                  "previous": "true" if previous else None,
                  "tailLines": None if tail is None else str(tail),
                  "timestamps": "true" if timestamps else None,
                  "sinceSeconds": None if since_seconds is None else str(since_seconds)}
        response = self.request("GET", f"{self.object_path('Pod', name, namespace)}/log", params=params,
                                stream=True, read_timeout=24 * 3600 if follow else None)
        with response:
            yield from response.iter_content(chunk_size=None)

    def pod_exec(self, name: str, command: list[str], namespace: str | None = None, *,
                 container: str | None = None, stdin: str | None = None) -> Obj:
        """Run `command` in the container: {"exitCode", "stdout", "stderr"}. Never re-sent."""
        body = {"command": command, "container": container, "stdin": stdin}
        return self._json("POST", f"{self.object_path('Pod', name, namespace)}/exec",
                          json_body={k: v for k, v in body.items() if v is not None}, replayable=False,
                          read_timeout=660)

    def exec_session(self, name: str, command: list[str], namespace: str | None = None, *,
                     container: str | None = None, stdin: bool = False,
                     tty: tuple[int, int] | None = None) -> PodSession:
        """Start `command` in the container, its output streamed and its input sent as it comes
        (`tty`: (rows, columns) of the terminal it gets)."""
        body: dict[str, Any] = {"command": command, "stdin": stdin, "tty": tty is not None}
        if container is not None:
            body["container"] = container
        if tty is not None:
            body["rows"], body["cols"] = tty
        return self._session(f"{self.object_path('Pod', name, namespace)}/exec/sessions", body)

    def port_forward_session(self, name: str, port: int, namespace: str | None = None) -> PodSession:
        """One connection to `port` as the pod sees it: its input goes there, its output comes back."""
        return self._session(f"{self.object_path('Pod', name, namespace)}/portforward/sessions",
                             {"port": port})

    def check_port_forward(self, name: str, port: int, namespace: str | None = None) -> None:
        """Raises what opening a port-forward session would (rights, a pod not running), opening none."""
        self._json("POST", f"{self.object_path('Pod', name, namespace)}/portforward/sessions",
                   json_body={"port": port}, params=_dry(True))

    def _session(self, path: str, body: Obj) -> PodSession:
        response = self.request("POST", path, json_body=body, replayable=False)
        server = response.url.split("/api/", 1)[0]
        return PodSession(self, server, response.json()["id"])

    def create(self, obj: Mapping[str, Any], namespace: str | None = None, *, dry_run: bool = False) -> Obj:
        """POST: fails with 409 AlreadyExists if the object exists. `dry_run`: the server says what
        it would make, and keeps nothing (kubectl's --dry-run=server)."""
        info, ns = self._target(obj, namespace)
        return self._json("POST", self.collection_path(info, ns), json_body=obj, params=_dry(dry_run))

    def replace(self, obj: Mapping[str, Any], namespace: str | None = None) -> Obj:
        """PUT: with metadata.resourceVersion set, fails with 409 if the object changed since."""
        info, ns = self._target(obj, namespace)
        path = f"{self.collection_path(info, ns)}/{quote(self._name(obj), safe='')}"
        return self._json("PUT", path, json_body=obj)

    def patch(
        self, kind: KindRef, name: str, patch: Mapping[str, Any] | list[Any], namespace: str | None = None,
        *, json_patch: bool = False,
    ) -> Obj:
        """JSON merge patch (RFC 7386: null deletes a key, maps merge, lists are replaced), or with
        `json_patch` a JSON Patch (RFC 6902: a list of operations)."""
        return self._json(
            "PATCH",
            self.object_path(kind, name, namespace),
            json_body=patch,
            content_type="application/json-patch+json" if json_patch else "application/merge-patch+json",
        )

    def delete(
        self,
        kind: KindRef,
        name: str,
        namespace: str | None = None,
        *,
        resource_version: int | None = None,
        grace_period: int | None = None,
        dry_run: bool = False,
        propagation_policy: str | None = None,
    ) -> Obj | None:
        """`propagation_policy`: Background (the server's default: the owner's dependents are
        garbage-collected after it) or Orphan (they stay); the server judges any other value."""
        params = {"resourceVersion": resource_version, "gracePeriodSeconds": grace_period,
                  "propagationPolicy": propagation_policy, **_dry(dry_run)}
        return self._json("DELETE", self.object_path(kind, name, namespace), params=params)

    def get_scale(self, kind: KindRef, name: str, namespace: str | None = None) -> Obj:
        """The Scale of a Deployment or ReplicaSet: spec.replicas, status.replicas and selector."""
        return self._json("GET", f"{self.object_path(kind, name, namespace)}/scale")

    def set_scale(self, kind: KindRef, name: str, replicas: int, namespace: str | None = None, *,
                  resource_version: int | None = None) -> Obj:
        """Only `spec.replicas`, through the /scale subresource; with `resource_version` a change
        made since it was read is a 409 instead of being overwritten."""
        body: Obj = {"spec": {"replicas": replicas}}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        return self._json("PATCH", f"{self.object_path(kind, name, namespace)}/scale", json_body=body,
                          content_type="application/merge-patch+json")

    def evict(self, name: str, namespace: str | None = None, *, grace_period: int | None = None,
              dry_run: bool = False) -> Obj:
        """Evict the pod through its eviction subresource: a graceful delete that its disruption
        budget allows, or ApiError 429 while it allows none. Re-sent after a broken connection: a
        pod evicted once is terminating, and evicting it again changes nothing."""
        namespace = namespace or self.namespace
        body: Obj = {"apiVersion": "berth/v1", "kind": "Eviction",
                     "metadata": {"name": name, "namespace": namespace}}
        if grace_period is not None:
            body["deleteOptions"] = {"gracePeriodSeconds": grace_period}
        return self._json("POST", f"{self.object_path('Pod', name, namespace)}/eviction", json_body=body,
                          params=_dry(dry_run), replayable=True)

    def rebalance_plan(self) -> Obj:
        """What the rebalancer would move now: {"items": [{namespace, pod, node, reason}], "waiting"?}."""
        return self._json("GET", "/api/v1/rebalance")

    def rebalance(self) -> Obj:
        """One round of the rebalancer now; each item says whether its pod was evicted."""
        return self._json("POST", "/api/v1/rebalance", replayable=False)

    def apply(
        self, documents: str | Iterable[Mapping[str, Any]], namespace: str | None = None, *,
        dry_run: bool = False,
    ) -> Obj:
        """Create-or-update every document in one atomic request.

        Replayable: applying the same manifest twice gives the same objects.
        """
        if isinstance(documents, str):
            body = documents
        else:
            body = yaml.safe_dump_all([dict(d) for d in documents], sort_keys=False)
        return self._json(
            "POST",
            "/api/v1/apply",
            params={"namespace": namespace or self.namespace, **_dry(dry_run)},
            data=body.encode(),
            content_type="application/yaml",
            replayable=True,
        )

    def openapi(self) -> Obj:
        """The API's OpenAPI document (what `berth explain` reads)."""
        return self._json("GET", "/api/v1/openapi.json")

    def cluster(self) -> Obj:
        return self._json("GET", "/api/v1/cluster")

    def add_master(self, address: str, api_url: str) -> Obj:
        body = {"address": address, "apiURL": api_url}
        return self._json("POST", "/api/v1/cluster/members", json_body=body)

    def remove_master(self, address: str) -> Obj:
        return self._json("DELETE", "/api/v1/cluster/members/" + quote(address, safe=""))

    def access_review(self, verb: str, resource: str, *, subresource: str | None = None,
                      namespace: str | None = None, name: str | None = None) -> Obj:
        """May this token? The SelfSubjectAccessReview's status: `allowed` and `reason`."""
        attributes = {"verb": verb, "resource": resource, "subresource": subresource,
                      "namespace": namespace, "name": name}
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                  "spec": {"resourceAttributes": {k: v for k, v in attributes.items() if v is not None}}}
        return self._json("POST", "/api/v1/selfsubjectaccessreviews", json_body=review,
                          replayable=True).get("status") or {}

    def rules_review(self, namespace: str | None) -> Obj:
        """The rules that hold for this token in `namespace` (a SelfSubjectRulesReview's status)."""
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
                  "spec": {"namespace": namespace or ""}}
        return self._json("POST", "/api/v1/selfsubjectrulesreviews", json_body=review,
                          replayable=True).get("status") or {}

    def whoami(self) -> Obj:
        """The token's user and groups (a SelfSubjectReview's status.userInfo)."""
        answer = self._json("POST", "/api/v1/selfsubjectreviews", replayable=True)
        return (answer.get("status") or {}).get("userInfo") or {}

    def node_metrics(self) -> dict[str, Obj]:
        """Latest usage per node name, from the leader's heartbeats."""
        return self._json("GET", "/api/v1/metrics/nodes").get("items") or {}

    def pod_metrics(self, namespace: str | None, label_selector: str | None = None) -> list[Obj]:
        """Latest usage of each pod (of `namespace`, None: all) the agents reported, as PodMetrics."""
        params = {"namespace": namespace, "labelSelector": label_selector or None}
        return self._json("GET", "/api/v1/metrics/pods", params=params).get("items") or []

    def watch(
        self,
        kind: KindRef,
        namespace: str | None = None,
        *,
        all_namespaces: bool = False,
        label_selector: str | None = None,
        since: int | None = None,
        timeout_seconds: float | None = None,
    ) -> Iterator[Obj]:
        """One watch stream: yields each event dict, BOOKMARKs included, until the stream ends.

        Raises ApiError(410) when `since` has left the server's window (list again and watch
        from the list's resourceVersion), and Unreachable when the stream breaks; see
        berth.cli.watching.follow for a loop that handles both.
        """
        info = kind_info(kind)
        ns = None if all_namespaces else self._ns(info, namespace)
        params: dict[str, Any] = {
            "kind": info.kind,
            "namespace": ns,
            "labelSelector": label_selector or None,
            "since": since,
            "timeoutSeconds": None if timeout_seconds is None else max(0, round(timeout_seconds)),
        }
        response = self.request(
            "GET",
            "/api/v1/watch",
            params=params,
            stream=True,
            read_timeout=self.watch_idle_timeout,
        )
        return self._events(response)

    def _events(self, response: requests.Response) -> Iterator[Obj]:
        server = response.url.split("/api/", 1)[0]
        try:
            for line in _lines(response):
                try:
                    event = json.loads(line)
                except ValueError:
                    raise BerthError(f"{server} sent a watch line that is not JSON") from None
                if event.get("type") == "ERROR":
                    raise ApiError(
                        int(event.get("code") or event.get("status") or 500),
                        str(event.get("reason") or "WatchError"),
                        str(event.get("error") or event.get("message") or "watch failed"),
                        event.get("field"),
                        server=server,
                    )
                yield event
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as err:
            raise Unreachable(f"the watch stream from {server} broke ({_short(err)})") from None
        finally:
            response.close()


def _lines(response: requests.Response) -> Iterator[bytes]:
    """Lines as soon as they arrive: read1 returns what is there instead of filling a buffer."""
    raw = response.raw
    pending = b""
    while True:
        chunk = raw.read1(_READ_CHUNK)
        if not chunk:
            break
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            if line.strip():
                yield line
    if pending.strip():
        yield pending
