"""The client's transport: a ``requests.Session`` whose urllib3 pool most calls use directly.

``make_session`` builds the session: its adapter retries only what is safe to repeat. ``send`` sends
one request on it. When the URL's adapter is requests' own ``HTTPAdapter`` and no proxy is set, the
call goes straight to the adapter's urllib3 pool, with the adapter's ``Retry``: requests' per-call
preparation (settings merged, the URL parsed again, hooks, cookies) cost about 0.7 ms of CPU per
call, a sixth of a step's. urllib3's failures are raised as the ``requests`` exceptions the adapter
raises for them, so both paths map to the same errors (aep/api/errors.py). Any other adapter (the
in-process simulator's, a test's) or a proxy goes through ``Session.request``.
"""

from __future__ import annotations

import urllib.request
from typing import Any, cast
from urllib.parse import urlencode

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers
from urllib3.util.retry import Retry

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "DELETE", "PUT"})


def make_session(*, retries: int = 2, pool_size: int = 10) -> requests.Session:
    """A session whose transport retries only what is safe to repeat.

    ``allowed_methods`` excludes POST, so read errors and 5xx after a POST was sent surface as
    ``OutcomeUnknown``. Connect errors are retried for every method: nothing was sent. The backoff is
    sub-second on purpose: longer waits belong to the task layer, which reschedules instead of sleeping.
    """
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        other=0,
        allowed_methods=IDEMPOTENT,
        status_forcelist=(500, 502, 503, 504),
        backoff_factor=0.1,
        backoff_max=1.0,
        respect_retry_after_header=False,
        raise_on_status=False,
    )
    session = requests.Session()
    # requests re-reads proxy settings from the environment on every request (a quarter of a call's
    # time in the benchmark). Read them once here instead; NO_PROXY is not consulted per host then.
    session.trust_env = False
    session.proxies = {k: v for k, v in urllib.request.getproxies().items() if k in ("http", "https")}
    adapter = HTTPAdapter(max_retries=retry, pool_connections=pool_size, pool_maxsize=pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def send(
    session: requests.Session,
    method: str,
    url: str,
    target: str,
    *,
    body: bytes | None,
    headers: dict[str, str],
    timeout: tuple[float, float],
) -> requests.Response:
    """Send one request and read its answer's status and headers; the caller reads the body.

    ``target`` is the request target on the wire (the URL's path and query). Redirects are not
    followed: a redirected POST would be sent again, and our headers with it. Raises a
    ``requests.RequestException`` for a transport failure, whichever path the call took.
    """
    adapter = session.get_adapter(url)
    if type(adapter) is not HTTPAdapter or session.proxies:
        # Exactly these headers, as on the pool path: None drops each default of the session's.
        exact: dict[str, str | None] = {**dict.fromkeys(session.headers), **headers}
        return session.request(method, url, data=body, headers=exact, timeout=timeout, stream=True,
                               allow_redirects=False)  # fmt: skip
    request = requests.PreparedRequest()
    request.method, request.url, request.headers = method, url, CaseInsensitiveDict(headers)
    try:
        # requests' own choice of pool: for https, its TLS context (certificates verified against
        # certifi's bundle, as on the session path).
        pool = cast(urllib3.HTTPConnectionPool, adapter.get_connection_with_tls_context(request, verify=True))
        raw = pool.urlopen(
            method, target, body=body, headers=headers, retries=adapter.max_retries,
            timeout=urllib3.Timeout(connect=timeout[0], read=timeout[1]), redirect=False, assert_same_host=False,
            preload_content=False, decode_content=False,
        )  # fmt: skip
    except urllib3.exceptions.HTTPError as exc:
        raise _as_requests_error(exc, request) from exc
    except OSError as exc:  # a socket error urllib3 let through
        raise requests.ConnectionError(exc, request=request) from exc
    resp = requests.Response()
    resp.status_code = raw.status
    resp.headers = CaseInsensitiveDict(raw.headers)
    resp.encoding = get_encoding_from_headers(resp.headers)
    resp.raw = raw
    resp.reason = raw.reason or ""
    resp.url = url
    resp.request = request
    return resp


def query(params: dict[str, Any] | None, sep: str) -> str:
    """``params`` as a query string, as requests encodes them: a list repeats its key, ``None`` is left out."""
    if not params:
        return ""
    pairs = [(k, item) for k, v in params.items() for item in (v if isinstance(v, list | tuple) else [v])
             if item is not None]  # fmt: skip
    return sep + urlencode(pairs) if pairs else ""


def _as_requests_error(
    exc: urllib3.exceptions.HTTPError, request: requests.PreparedRequest
) -> requests.RequestException:
    """The ``requests`` exception its ``HTTPAdapter`` raises for this urllib3 failure."""
    reason = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
    if isinstance(reason, urllib3.exceptions.ConnectTimeoutError) and not isinstance(
        reason, urllib3.exceptions.NewConnectionError
    ):
        return requests.ConnectTimeout(exc, request=request)
    # A read timeout the Retry gave up on (a GET's) is a ConnectionError in requests; a POST's, never
    # retried, comes bare and is a ReadTimeout. Both are "no answer" to aep/api/errors.py.
    if isinstance(reason, urllib3.exceptions.ReadTimeoutError) and reason is exc:
        return requests.ReadTimeout(exc, request=request)
    if isinstance(reason, urllib3.exceptions.SSLError):
        return requests.exceptions.SSLError(exc, request=request)
    return requests.ConnectionError(exc, request=request)
