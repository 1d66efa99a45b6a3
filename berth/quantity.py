"""Kubernetes quantities: CPU as millicores, memory as bytes.

Kept free of pydantic so the light agent can parse its settings with it. A quantity
is short and bounded: a 900,000-digit one once took 20 s to convert, and one past
what the runtime takes (`--cpus`, `--memory`) failed every round that started it.
"""

from __future__ import annotations

import re
from decimal import Decimal

MAX_QUANTITY_CHARS = 32
MAX_CPU_MILLIS = 10**9  # a million cores
MAX_MEMORY_BYTES = 2**62  # 4 EiB: below podman's and docker's int64 bytes
_CPU = re.compile(r"^([0-9]{1,18}(\.[0-9]{1,9})?)(m?)$")
_MEMORY = re.compile(r"^([0-9]{1,19}(\.[0-9]{1,9})?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_MEMORY_FACTORS = {
    None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}
# Any quantity (an autoscaler's target for an app's own metric): memory's suffixes and milli
_DECIMAL = re.compile(r"^([0-9]{1,19}(\.[0-9]{1,9})?)(m|Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")


def _text(quantity: str | int | float, what: str) -> str:
    label = f"{what} quantity" if what else "quantity"
    if isinstance(quantity, bool):
        raise ValueError(f"invalid {label} {quantity!r}")
    text = str(quantity).strip() if not isinstance(quantity, str) else quantity.strip()
    if len(text) > MAX_QUANTITY_CHARS:
        raise ValueError(f"{label} is longer than {MAX_QUANTITY_CHARS} characters")
    return text


def cpu_millis(quantity: str | int | float) -> int:
    """CPU quantity ("250m", "1.5", 2) as whole millicores; raises ValueError."""
    text = _text(quantity, "CPU")
    match = _CPU.match(text)
    if not match:
        raise ValueError(f"invalid CPU quantity {text!r}: use cores (0.5, 2) or millicores (250m)")
    number = Decimal(match.group(1))
    millis = number if match.group(3) else number * 1000
    if millis != millis.to_integral_value():
        raise ValueError(f"CPU quantity {text!r} is finer than 1m")
    if millis > MAX_CPU_MILLIS:
        raise ValueError(f"CPU quantity {text!r} is more than {MAX_CPU_MILLIS // 1000} cores")
    return int(millis)


def memory_bytes(quantity: str | int | float) -> int:
    """Memory quantity ("128Mi", "1Gi", "500M", 1024) as bytes; raises ValueError."""
    text = _text(quantity, "memory")
    match = _MEMORY.match(text)
    if not match:
        raise ValueError(f"invalid memory quantity {text!r}: use bytes or a suffix (128Mi, 1Gi, 500M)")
    value = Decimal(match.group(1)) * _MEMORY_FACTORS[match.group(3)]
    if value != value.to_integral_value():
        raise ValueError(f"memory quantity {text!r} is not a whole number of bytes")
    if value > MAX_MEMORY_BYTES:
        raise ValueError(f"memory quantity {text!r} is more than 4Ei")
    return int(value)

def milli_value(quantity: str | int | float) -> int:
    """Any quantity ("500m", "1.5k", "2Gi", 12) as whole thousandths of its unit, as Kubernetes'
    autoscaler compares an app's metrics with their targets (MilliValue); raises ValueError."""
    text = _text(quantity, "")
    match = _DECIMAL.match(text)
    if not match:
        raise ValueError(f"invalid quantity {text!r}: use a number with an optional suffix (500m, 1.5k, 2Gi)")
    suffix = match.group(3)
    value = Decimal(match.group(1)) * (1 if suffix == "m" else 1000 * _MEMORY_FACTORS[suffix])
    if value != value.to_integral_value():
        raise ValueError(f"quantity {text!r} is finer than 1m")
    return int(value)


def milli_text(millis: int) -> str:
    """Thousandths as the shortest quantity that says them exactly ("250m", "3"), as Kubernetes
    prints a metric's current value."""
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


CPU_PATTERN = _CPU.pattern
MEMORY_PATTERN = _MEMORY.pattern
QUANTITY_PATTERN = _DECIMAL.pattern
