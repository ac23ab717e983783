"""Calls to the provincial platform: signed (protocol.py), through one circuit
breaker per endpoint (pybreaker), each answer classed as ok, transient or
permanent. A transient answer counts against the breaker; when it is open,
calls fail at once with ``Open`` until its reset timeout, so a province that
is down is not hammered by every pending item."""
import json
import time

import pybreaker
import requests
from prometheus_client import Counter, Gauge, Histogram

from .protocol import Answer, classify, signed_headers, unreachable

CALLS = Counter("zhzx_province_requests_total", "Calls to the provincial platform",
                ["endpoint", "outcome"])
LATENCY = Histogram("zhzx_province_request_seconds", "Latency of calls to the province",
                    ["endpoint"])
BREAKER = Gauge("zhzx_province_breaker_open", "1 while the breaker to the province is open")


class Open(Exception):
    """The breaker is open: the province failed too often just now."""


class _Transient(Exception):
    def __init__(self, answer):
        super().__init__(answer.code)
        self.answer = answer


class ProvinceClient:
    def __init__(self, url, app_id, secret, algorithm="hmac-sm3", timeout=10,
                 fail_max=5, reset_timeout=30):
        self.url, self.app_id, self.secret = url.rstrip("/"), app_id, secret
        self.algorithm, self.timeout = algorithm, timeout
        # the call that trips it still reports its own answer
        self.breaker = pybreaker.CircuitBreaker(fail_max=fail_max, reset_timeout=reset_timeout,
                                                throw_new_error_on_trip=False)
        self.session = requests.Session()
        self.last_success = None
        self.last_error = None

    @property
    def breaker_state(self):
        return self.breaker.current_state

    def call(self, method, path, *, query=None, body=None, key=None, endpoint=None):
        """The province's ``Answer``; raises ``Open`` while the breaker is open."""
        endpoint = endpoint or path
        data = b"" if body is None else json.dumps(body, ensure_ascii=False,
                                                   sort_keys=True).encode()

        def attempt():
            headers = signed_headers(self.app_id, self.secret, method, path, query or {}, data,
                                     self.algorithm)
            headers["Content-Type"] = "application/json; charset=utf-8"
            if key:
                headers["Idempotency-Key"] = key
            started = time.monotonic()
            try:
                resp = self.session.request(method, self.url + path, params=query, data=data,
                                            headers=headers, timeout=self.timeout,
                                            allow_redirects=False)
            except requests.RequestException as exc:
                raise _Transient(unreachable(exc)) from None
            finally:
                LATENCY.labels(endpoint).observe(time.monotonic() - started)
            try:
                parsed = resp.json()
            except ValueError:
                parsed = None
            answer = classify(resp.status_code, parsed, resp.headers)
            if answer.kind == "transient" or resp.status_code == 401:
                # 401 is the platform's configuration (secret, clock), not the
                # item's: every item waits, none is parked
                raise _Transient(Answer("transient", answer.status, answer.code, answer.message,
                                        answer.retry_after))
            return answer

        try:
            answer = self.breaker.call(attempt)
        except _Transient as exc:
            answer = exc.answer
        except pybreaker.CircuitBreakerError:
            BREAKER.set(1)
            CALLS.labels(endpoint, "breaker_open").inc()
            raise Open(self.last_error and self.last_error.get("code")) from None
        BREAKER.set(1 if self.breaker.current_state == "open" else 0)
        CALLS.labels(endpoint, answer.kind if answer.kind != "ok" else "ok").inc()
        if answer.kind == "transient":
            self.last_error = {"code": answer.code, "status": answer.status,
                               "message": answer.message, "at": time.time()}
        else:
            self.last_success = time.time()
        return answer
