"""What can go wrong talking to the provider, and the provider's own words for it.

Errors name the endpoint and offset and say what to do, because the person reading them is
running a nightly job, not debugging HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class ApiError(Exception):
    """Base of everything the provider side can raise."""


class AuthError(ApiError):
    """The provider refused the credentials: retrying cannot help (CLI exit status 2)."""


class FetchError(ApiError):
    """An endpoint could not be fetched correctly (CLI exit status 1).

    `endpoint` is the collection (or `version`, `token`), `offset` the page's offset when there
    was one, `problem` what happened, `hint` what the user can do about it, and `status` the
    HTTP status of the provider's answer when that is what failed.
    """

    def __init__(
        self,
        endpoint: str,
        problem: str,
        *,
        offset: int | None = None,
        hint: str | None = None,
        status: int | None = None,
    ) -> None:
        where = endpoint if offset is None else f"{endpoint} at offset {offset}"
        message = f"{where}: {problem}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)
        self.endpoint = endpoint
        self.offset = offset
        self.problem = problem
        self.hint = hint
        self.status = status


@dataclass(frozen=True)
class ProviderStatus:
    """An IMS status object, wherever the server put it."""

    code_major: str | None
    severity: str | None
    description: str | None
    code_minor: str | None  # normalised, see `normalise_code_minor`

    def summary(self) -> str:
        parts = [p for p in (self.code_minor, self.description) if p]
        return ": ".join(parts) if parts else (self.code_major or "no details")

    @property
    def failed(self) -> bool:
        """The provider says the request failed (not merely a warning)."""
        major = (self.code_major or "").strip().lower()
        return major == "failure" or (self.severity or "").strip().lower() == "error"


# Spellings seen in the wild, keyed by their letters alone.
_CODE_MINOR_NAMES = {
    "fullsuccess": "full_success",
    "unknownobject": "unknown_object",
    "invalidfilterfield": "invalid_filter_field",
    "invalidselectionfield": "invalid_selection_field",
    "invalidsortfield": "invalid_sort_field",
    "invalidblankselectionfield": "invalid_blank_selection_field",
    "invaliddata": "invalid_data",
    "serverbusy": "server_busy",
    "forbidden": "forbidden",
    "unauthorisedrequest": "unauthorized_request",
    "unauthorizedrequest": "unauthorized_request",
    "internalservererror": "internal_server_error",
}
_NOT_LETTERS = re.compile(r"[^a-z0-9]+")


def normalise_code_minor(value: str) -> str:
    """`unknown object`, `unknownobject`, `Unknown_Object` all become `unknown_object`."""
    letters = _NOT_LETTERS.sub("", value.lower())
    if letters in _CODE_MINOR_NAMES:
        return _CODE_MINOR_NAMES[letters]
    return _NOT_LETTERS.sub("_", value.lower()).strip("_")


def _code_minor(value: Any) -> str | None:
    if isinstance(value, str):
        return normalise_code_minor(value) if value.strip() else None
    if isinstance(value, Mapping):
        fields = value.get("imsx_codeMinorField", value.get("codeMinorField"))
        if isinstance(fields, Mapping):
            fields = [fields]
        if isinstance(fields, list):
            for item in fields:
                if isinstance(item, Mapping):
                    found = item.get("imsx_codeMinorFieldValue", item.get("codeMinorFieldValue"))
                    if isinstance(found, str) and found.strip():
                        return normalise_code_minor(found)
    return None


def _status_from(candidate: Mapping[str, Any]) -> ProviderStatus | None:
    major = candidate.get("imsx_codeMajor", candidate.get("codeMajor"))
    minor = candidate.get(
        "imsx_CodeMinor", candidate.get("imsx_codeMinor", candidate.get("codeMinor"))
    )
    description = candidate.get("imsx_description", candidate.get("description"))
    severity = candidate.get("imsx_severity", candidate.get("severity"))
    if major is None and minor is None:
        return None
    return ProviderStatus(
        code_major=str(major) if major is not None else None,
        severity=str(severity) if severity is not None else None,
        description=str(description) if description is not None else None,
        code_minor=_code_minor(minor),
    )


def parse_provider_statuses(body: Any) -> list[ProviderStatus]:
    """Every IMS status object in a JSON body: at the root, in `statusInfoSet[]`, in
    `imsx_statusInfo`, or as plain `codeMajor`/`codeMinor` keys."""
    if not isinstance(body, Mapping):
        return []
    statuses = []
    root = _status_from(body)
    if root is not None:
        statuses.append(root)
    for key in ("statusInfoSet", "imsx_statusInfoSet", "imsx_statusInfo", "statusInfo"):
        nested = body.get(key)
        if isinstance(nested, Mapping):
            nested = nested.get("imsx_statusInfo", nested.get("statusInfo", nested))
        items = nested if isinstance(nested, list) else [nested]
        for item in items:
            if isinstance(item, Mapping):
                found = _status_from(item)
                if found is not None:
                    statuses.append(found)
    return statuses


def describe_error_body(body: Any, text: str) -> str:
    """The provider's explanation of an error answer, as one line."""
    statuses = parse_provider_statuses(body)
    if statuses:
        return "; ".join(status.summary() for status in statuses)
    if isinstance(body, Mapping) and ("error" in body or "error_description" in body):
        return str(body.get("error_description") or body.get("error"))
    snippet = " ".join(text.split())[:160]
    return snippet or "no explanation given"
