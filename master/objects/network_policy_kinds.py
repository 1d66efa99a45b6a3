"""The schema of a NetworkPolicy: Kubernetes' networking.k8s.io/v1 shape under apiVersion berth/v1.

Kept apart from kinds.py (which makes the whole object, the envelope with its metadata), as
storage_kinds.py is. Every host's agent enforces the policies in its nftables table
(agent/network_policy.py resolves them, agent/ruleset.py renders them). Every value is bounded and
unknown fields are refused; a rule that can never hold (an endPort below its port, an `except` outside
its `cidr`) is refused with the field named, as Kubernetes' validation does.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from master.objects.fields import Cidr, LabelKey, Labels, LabelValue, Port, PortName

MAX_RULES = 100  # of a policy's ingress or egress rules
MAX_PEERS = 100  # of a rule's from or to
MAX_PORTS = 100  # of a rule's ports
POLICY_TYPES = ("Ingress", "Egress")


class _Strict(BaseModel):
    """Unknown fields are errors (as kinds.Strict: this module does not import kinds.py)."""

    model_config = ConfigDict(extra="forbid")


class SelectorRequirement(_Strict):
    key: LabelKey
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[LabelValue] = Field(default_factory=list, max_length=64)

    @model_validator(mode="after")
    def _values_as_operator_asks(self) -> SelectorRequirement:
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"values must not be empty when operator is {self.operator}")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"values must be empty when operator is {self.operator}")
        return self


class PolicySelector(_Strict):
    """Kubernetes' LabelSelector: every label and every expression must hold; empty selects all."""

    matchLabels: Labels = Field(default_factory=dict)
    matchExpressions: list[SelectorRequirement] = Field(default_factory=list, max_length=32)


class IPBlock(_Strict):
    cidr: Cidr
    # `except` is a Python keyword: the field is `except_` here, `except` on the wire
    except_: list[Cidr] = Field(default_factory=list, max_length=100, alias="except")

    model_config = ConfigDict(extra="forbid", serialize_by_alias=True)

    @model_validator(mode="after")
    def _inside(self) -> IPBlock:
        network = ipaddress.IPv4Network(self.cidr)
        for number, excepted in enumerate(self.except_):
            inner = ipaddress.IPv4Network(excepted)
            if not (inner.subnet_of(network) and inner != network):
                raise ValueError(f"except[{number}] {excepted} must be strictly within cidr {self.cidr}")
        return self


class NetworkPolicyPeer(_Strict):
    """podSelector (pods of the policy's namespace), namespaceSelector (every pod of the namespaces it
    selects), both (the pods it selects in those namespaces), or ipBlock alone."""

    podSelector: PolicySelector | None = None
    namespaceSelector: PolicySelector | None = None
    ipBlock: IPBlock | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> NetworkPolicyPeer:
        if self.ipBlock is not None and (self.podSelector is not None or self.namespaceSelector is not None):
            raise ValueError("ipBlock may not be combined with podSelector or namespaceSelector")
        if self.ipBlock is None and self.podSelector is None and self.namespaceSelector is None:
            raise ValueError("a peer needs podSelector, namespaceSelector or ipBlock")
        return self


def _digits_as_number(value: Any) -> Any:
    """IntOrString as clients write it: a string of digits is the number."""
    return int(value) if isinstance(value, str) and value.isascii() and value.isdigit() else value


class NetworkPolicyPort(_Strict):
    """A port number (with endPort, a range), a container port's name (the selected pod's for
    ingress, the peer's for egress), or none: every port of the protocol."""

    protocol: Literal["TCP", "UDP"] = "TCP"
    port: Annotated[Port | PortName | None, BeforeValidator(_digits_as_number)] = None
    endPort: Port | None = None

    @model_validator(mode="after")
    def _range(self) -> NetworkPolicyPort:
        if self.endPort is not None:
            if not isinstance(self.port, int):
                raise ValueError("endPort needs port to be a number")
            if self.endPort < self.port:
                raise ValueError(f"endPort {self.endPort} must not be less than port {self.port}")
        return self


class NetworkPolicyIngressRule(_Strict):
    from_: list[NetworkPolicyPeer] = Field(default_factory=list, max_length=MAX_PEERS, alias="from")
    ports: list[NetworkPolicyPort] = Field(default_factory=list, max_length=MAX_PORTS)

    model_config = ConfigDict(extra="forbid", serialize_by_alias=True)


class NetworkPolicyEgressRule(_Strict):
    to: list[NetworkPolicyPeer] = Field(default_factory=list, max_length=MAX_PEERS)
    ports: list[NetworkPolicyPort] = Field(default_factory=list, max_length=MAX_PORTS)


class NetworkPolicySpec(_Strict):
    """Kubernetes' defaulting: without policyTypes, a policy is Ingress, and Egress too when it has
    egress rules; an empty `from`/`to` is every peer, empty `ports` every port; an isolated pod
    with no rule of a direction allows nothing in that direction."""

    podSelector: PolicySelector
    policyTypes: list[Literal["Ingress", "Egress"]] | None = Field(default=None, max_length=2)
    ingress: list[NetworkPolicyIngressRule] = Field(default_factory=list, max_length=MAX_RULES)
    egress: list[NetworkPolicyEgressRule] = Field(default_factory=list, max_length=MAX_RULES)

    @model_validator(mode="after")
    def _types(self) -> NetworkPolicySpec:
        if self.policyTypes is None:
            self.policyTypes = ["Ingress", *(["Egress"] if self.egress else [])]
        if len(set(self.policyTypes)) != len(self.policyTypes):
            raise ValueError("policyTypes must not repeat a type")
        if not self.policyTypes:
            raise ValueError("policyTypes must name Ingress, Egress or both")
        return self
