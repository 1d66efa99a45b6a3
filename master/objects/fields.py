"""Validated scalar types shared by every kind's schema.

Each type is an `Annotated` pydantic type, so the same declaration both
validates input and appears (with its pattern) in the generated OpenAPI
document: there is no second, hand-kept description of what is allowed.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from master.objects.quantity import CPU_PATTERN, MEMORY_PATTERN, cpu_millis, memory_bytes

DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
LABEL_NAME = r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$"
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
CONFIG_KEY = r"^[-._a-zA-Z0-9]+$"
# registry[:port]/path[:tag][@sha256:digest], as the distribution reference grammar allows.
IMAGE_REF = (
    r"^(([a-zA-Z0-9.-]+(:[0-9]+)?)/)?[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$"
)

def _check_cpu(value: str) -> str:
    cpu_millis(value)
    return value


def _check_memory(value: str) -> str:
    memory_bytes(value)
    return value


def _check_label_key(value: str) -> str:
    prefix, _, name = value.rpartition("/")
    if prefix and (len(prefix) > 253 or not re.match(DNS1123_SUBDOMAIN, prefix)):
        raise ValueError(f"label key prefix {prefix!r} must be a DNS-1123 subdomain")
    if not name or len(name) > 63 or not re.match(LABEL_NAME, name):
        raise ValueError(
            f"label key {value!r}: name part must be 1-63 alphanumerics, '-', '_' or '.', "
            "starting and ending with an alphanumeric"
        )
    return value


def _quantity(value: str | int | float) -> str:
    return str(value)


DnsLabel = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=DNS1123_LABEL)]
DnsSubdomain = Annotated[
    str, StringConstraints(min_length=1, max_length=253, pattern=DNS1123_SUBDOMAIN)
]
LabelKey = Annotated[str, StringConstraints(min_length=1, max_length=317), AfterValidator(_check_label_key)]
LabelValue = Annotated[str, StringConstraints(max_length=63, pattern=LABEL_VALUE)]
Labels = dict[LabelKey, LabelValue]
EnvName = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=ENV_NAME)]
ConfigKey = Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=CONFIG_KEY)]
ImageRef = Annotated[str, StringConstraints(min_length=1, max_length=512, pattern=IMAGE_REF)]
Port = Annotated[int, Field(ge=1, le=65535)]
CpuQuantity = Annotated[
    str | int | float, AfterValidator(_quantity), AfterValidator(_check_cpu),
    Field(json_schema_extra={"pattern": CPU_PATTERN}),
]
MemoryQuantity = Annotated[
    str | int, AfterValidator(_quantity), AfterValidator(_check_memory),
    Field(json_schema_extra={"pattern": MEMORY_PATTERN}),
]
