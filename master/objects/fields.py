"""Validated scalar types shared by every kind's schema.

Each type is an `Annotated` pydantic type, so the same declaration both
validates input and appears (with its pattern) in the generated OpenAPI
document: there is no second, hand-kept description of what is allowed.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, WithJsonSchema
from pydantic_core import PydanticCustomError

from berth.quantity import (
    CPU_PATTERN,
    MAX_CPU_MILLIS,
    MAX_MEMORY_BYTES,
    MEMORY_PATTERN,
    QUANTITY_PATTERN,
    cpu_millis,
    memory_bytes,
    milli_value,
)

DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
LABEL_NAME = r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$"
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
CONFIG_KEY = r"^[-._a-zA-Z0-9]+$"
# [domain[:port]/]path[:tag][@sha256:digest], the distribution reference grammar: every part
# starts with an alphanumeric, so a reference can never be read as a podman/docker option.
_DOMAIN_COMPONENT = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_REF = (
    rf"^(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]{{1,5}})?/)?"
    rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)
# podman reads `NAME:rest` as an image transport when NAME is one of these (`dir:1/x` is a
# directory, not a registry on port 1): a registry may not carry one of these names.
_TRANSPORTS = ("dir", "oci", "oci-archive", "docker-archive", "docker-daemon", "docker", "containers-storage",
               "sif", "tarball", "ostree", "atomic")
TRANSPORT = re.compile(rf"^({'|'.join(_TRANSPORTS)}):", re.IGNORECASE)
# A path on a host or in a container: characters that every engine's --volume option, sshfs and a
# mount table take as they are (no ':' or ',' that podman and docker split on, no spaces).
PATH_CHARS = r"[A-Za-z0-9._@+=-]"
# Segments, each but the last ending in a slash: one way to match each path, so a refused one costs
# linear time (the former `^/(C+/?)*$` backtracked exponentially: 1.4 s for "/" + 24 letters + ":")
ABSOLUTE_PATH = rf"^/({PATH_CHARS}+/)*{PATH_CHARS}*$"
RELATIVE_PATH = rf"^{PATH_CHARS}+(/{PATH_CHARS}+)*$"
# An HTTP path a probe asks for: printable ASCII without spaces, so it stays one request line.
HTTP_PATH = r"^/[!-~]*$"


def _no_dot_dot(value: str) -> str:
    """A path that cannot climb out of where it is put: no `..` component (`.` is harmless, and
    Kubernetes refuses `..` alike in subPath and items' paths)."""
    if ".." in value.split("/"):
        raise ValueError(f"path {value!r} must not contain a '..' component")
    return value


def check_absolute_path(value: str) -> str:
    """A path on a host or in a container, as ABSOLUTE_PATH describes it, climbing nowhere."""
    if not re.fullmatch(ABSOLUTE_PATH, value):
        raise ValueError(f"{value!r} is not an absolute path of letters, digits and '._@+=-' (no ':', ',' "
                         "or spaces: the engines' and mounts' options split on them)")
    return _no_dot_dot(value)


def _file_mode(value: object) -> object:
    """0400 as YAML 1.1 writes it: Berth's YAML reads it as a string (no octal ints), so a string
    of octal digits with a leading 0 is read as octal; an int is taken as it is (256 == 0o400)."""
    if isinstance(value, str) and re.fullmatch(r"0[0-7]{1,4}", value):
        return int(value, 8)
    return value


def _check_cpu(value: str) -> str:
    cpu_millis(value)
    return value


def _check_memory(value: str) -> str:
    memory_bytes(value)
    return value


def _check_quantity(value: str) -> str:
    milli_value(value)
    return value


# what _check_label_key accepts, for the OpenAPI document (lengths are checked by the validator)
LABEL_KEY_SCHEMA = (r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


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


def _check_image(value: str) -> str:
    if TRANSPORT.match(value):
        raise ValueError(f"{value.split(':')[0]!r} names an image transport of podman, not a registry")
    return value


def _check_address(value: str) -> str:
    """An IP address or a host name: what the runtime's SSH connects to."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        if not re.match(DNS1123_SUBDOMAIN, value.lower()):
            raise ValueError(f"{value!r} is neither an IP address nor a host name") from None
    return value


def _check_pod_ip(value: str) -> str:
    """"" while the pod has none yet."""
    if value:
        ipaddress.ip_address(value)
    return value


def _check_port_name(value: str) -> str:
    """A port's name (Kubernetes' IANA_SVC_NAME): a service's targetPort "8080" written as a string
    must not be taken for the name of a container port."""
    if not re.search(r"[a-z]", value):
        raise ValueError(f"{value!r} is not a port name: a name has at least one letter")
    return value


def _check_ipv4(value: str) -> str:
    """As written canonically: a stored address is compared as text with the next one sent."""
    try:
        address = ipaddress.IPv4Address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 address such as 10.96.0.10") from None
    if str(address) != value:
        raise ValueError(f"{value!r} is not an IPv4 address as written canonically: write {address}")
    return value


# what _check_cidr accepts, for the OpenAPI document (the octets and the prefix are checked by it)
CIDR_SCHEMA = r"^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$"


def _check_cidr(value: str) -> str:
    """An IPv4 network as written canonically: a stored subnet is compared as text with the
    next one sent, and ipaddress would also take a bare address (as a /32) or a netmask."""
    example = "an IPv4 network in CIDR form, such as 10.244.1.0/24"
    try:
        network = ipaddress.IPv4Network(value)
    except ValueError as err:
        raise ValueError(f"{value!r} is not {example} ({err})") from None
    if str(network) != value:
        raise ValueError(f"{value!r} is not {example}" + (f": write {network}" if "/" in value else ""))
    return value


def _to_millis(value: object) -> object:
    """Status keeps CPU as whole millicores; a quantity string ("2", "500m") is converted."""
    return cpu_millis(value) if isinstance(value, str) else value


def _to_bytes(value: object) -> object:
    return memory_bytes(value) if isinstance(value, str) else value


NOT_SUPPORTED_YET = "not_supported_yet"  # the error type: the API's reason FieldValueNotSupported


def _empty(description: str) -> dict[str, Any]:
    """The schema of a field refused by name: only an empty value, which is dropped (null, "", 0,
    false, [] or {}, what tools emit for "unset"), as `refuse` lets through."""
    return {"anyOf": [{"enum": [None, "", 0, False]}, {"type": "array", "maxItems": 0},
                      {"type": "object", "maxProperties": 0}], "description": description}


def not_supported_yet(what: str) -> Any:
    """A field Kubernetes users write that nothing in Berth acts on yet: refused by name rather
    than stored and ignored (an empty value, as tools often emit, is let through and dropped)."""
    def refuse(value: Any) -> None:
        if value:
            raise PydanticCustomError(NOT_SUPPORTED_YET, "not supported yet: {what}", {"what": what})

    return Annotated[Any, AfterValidator(refuse), WithJsonSchema(_empty(f"not supported yet: {what}"))]


FORBIDDEN = "forbidden"  # the error type: the API's reason FieldValueForbidden


def forbidden(why: str) -> Any:
    """A field the schema shares with a place where Kubernetes forbids it (a probe on an init
    container): refused by name, with why; an empty value is let through and dropped."""
    def refuse(value: Any) -> None:
        if value:
            raise PydanticCustomError(FORBIDDEN, "forbidden: {why}", {"why": why})

    return Annotated[Any, AfterValidator(refuse), WithJsonSchema(_empty(f"forbidden: {why}"))]


DnsLabel = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=DNS1123_LABEL)]
DnsSubdomain = Annotated[
    str, StringConstraints(min_length=1, max_length=253, pattern=DNS1123_SUBDOMAIN)
]
LabelKey = Annotated[str, StringConstraints(min_length=1, max_length=317), AfterValidator(_check_label_key),
                     Field(json_schema_extra={"pattern": LABEL_KEY_SCHEMA})]
LabelValue = Annotated[str, StringConstraints(max_length=63, pattern=LABEL_VALUE)]
Labels = dict[LabelKey, LabelValue]
EnvName = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=ENV_NAME)]
ConfigKey = Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=CONFIG_KEY)]
ImageRef = Annotated[str, StringConstraints(min_length=1, max_length=512, pattern=IMAGE_REF),
                     AfterValidator(_check_image)]
Port = Annotated[int, Field(ge=1, le=65535)]
PortName = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=DNS1123_LABEL),
                     AfterValidator(_check_port_name)]
Ipv4Address = Annotated[str, StringConstraints(min_length=7, max_length=15), AfterValidator(_check_ipv4),
                        Field(json_schema_extra={"pattern": r"^[0-9]{1,3}(\.[0-9]{1,3}){3}$"})]
PodAddress = Annotated[str, StringConstraints(max_length=45), AfterValidator(_check_pod_ip)]
HostAddress = Annotated[str, StringConstraints(min_length=1, max_length=253), AfterValidator(_check_address)]
Cidr = Annotated[str, StringConstraints(min_length=9, max_length=18), AfterValidator(_check_cidr),
                 Field(json_schema_extra={"pattern": CIDR_SCHEMA})]
HttpPath = Annotated[str, StringConstraints(min_length=1, max_length=2048, pattern=HTTP_PATH)]
AbsolutePath = Annotated[str, StringConstraints(min_length=1, max_length=1024),
                         AfterValidator(check_absolute_path),
                         Field(json_schema_extra={"pattern": ABSOLUTE_PATH})]
RelativePath = Annotated[str, StringConstraints(min_length=1, max_length=1024, pattern=RELATIVE_PATH),
                         AfterValidator(_no_dot_dot)]
FileMode = Annotated[int, BeforeValidator(_file_mode), Field(ge=0, le=0o777),  # permission bits only
                     WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 0, "maximum": 0o777},
                                               {"type": "string", "pattern": "^0[0-7]{1,4}$"}],
                                     "description": "permission bits: a number, or octal digits after a 0"})]
Timestamp = Annotated[str, StringConstraints(max_length=64)]
Reason = Annotated[str, StringConstraints(max_length=128)]
Message = Annotated[str, StringConstraints(max_length=4096)]
Uid = Annotated[str, StringConstraints(max_length=64)]
Seconds = Annotated[int, Field(ge=0, le=86400)]  # a day: every duration a spec names
Count = Annotated[int, Field(ge=0, le=2**31 - 1)]
MilliCpu = Annotated[int, BeforeValidator(_to_millis), Field(ge=0, le=MAX_CPU_MILLIS)]
Bytes = Annotated[int, BeforeValidator(_to_bytes), Field(ge=0, le=MAX_MEMORY_BYTES)]
CpuQuantity = Annotated[
    str | int | float, AfterValidator(_quantity), AfterValidator(_check_cpu),
    Field(json_schema_extra={"pattern": CPU_PATTERN}),
]
MemoryQuantity = Annotated[
    str | int, AfterValidator(_quantity), AfterValidator(_check_memory),
    Field(json_schema_extra={"pattern": MEMORY_PATTERN}),
]
Quantity = Annotated[  # any quantity: an autoscaler's target for an app's own metric
    str | int | float, AfterValidator(_quantity), AfterValidator(_check_quantity),
    Field(json_schema_extra={"pattern": QUANTITY_PATTERN}),
]
