"""Kubernetes quantities: CPU as millicores, memory as bytes.

Kept free of pydantic so the light agent can parse its settings with it.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_CPU = re.compile(r"^([0-9]+(\.[0-9]+)?)(m?)$")
_MEMORY = re.compile(r"^([0-9]+(\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")
_MEMORY_FACTORS = {
    None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50,
}


def cpu_millis(quantity: str | int | float) -> int:
    """CPU quantity ("250m", "1.5", 2) as whole millicores; raises ValueError."""
    match = _CPU.match(str(quantity).strip())
    if not match:
        raise ValueError(f"invalid CPU quantity {quantity!r}: use cores (0.5, 2) or millicores (250m)")
    number = Decimal(match.group(1))
    millis = number if match.group(3) else number * 1000
    if millis != millis.to_integral_value():
        raise ValueError(f"CPU quantity {quantity!r} is finer than 1m")
    return int(millis)


def memory_bytes(quantity: str | int | float) -> int:
    """Memory quantity ("128Mi", "1Gi", "500M", 1024) as bytes; raises ValueError."""
    match = _MEMORY.match(str(quantity).strip())
    if not match:
        raise ValueError(f"invalid memory quantity {quantity!r}: use bytes or a suffix (128Mi, 1Gi, 500M)")
    try:
        value = Decimal(match.group(1)) * _MEMORY_FACTORS[match.group(3)]
    except InvalidOperation as err:  # pragma: no cover - the regex admits only decimals
        raise ValueError(f"invalid memory quantity {quantity!r}") from err
    if value != value.to_integral_value():
        raise ValueError(f"memory quantity {quantity!r} is not a whole number of bytes")
    return int(value)

CPU_PATTERN = _CPU.pattern
MEMORY_PATTERN = _MEMORY.pattern
