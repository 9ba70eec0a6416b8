"""The committed bandwidth of a Sonata product, in Mbit/s, read from its ``productConfiguration``.

MEF product schemas state bandwidth as the CIR (committed information rate) of a bandwidth profile, an
``InformationRate`` ``{irValue: number >= 0, irUnits: BPS|KBPS|MBPS|GBPS|TBPS|PBPS|EBPS|ZBPS|YBPS}``, decimal units
(1 KBPS = 1000 bit/s). ``bandwidth_mbps`` looks, in this order, at:

1. Access E-Line OVC (``accessElineOvc.yaml``): the end points ``uniEp`` then ``enniEp``; at the first that gives a
   rate, the sum of ``cir`` over ``ingressBandwidthProfilePerClassOfServiceName[].bwpFlow`` (one committed rate per
   class of service, so the committed total is their sum), else ``egressBandwidthProfilePerEndPoint[0].cir``, else
   the sum over ``egressBwpPerEgressEquivalenceClassName[].bwpFlow.cir``.
2. Carrier Ethernet Operator UNI (``carrierEthernetOperatorUni.yaml``): ``ingressBandwidthProfile.cir``, else
   ``egressBandwidthProfile.cir`` (each a ``BwpFlow``).
3. Basic Internet Access (``basicInternetAccess.yaml``, envelopes ``BasicIaBwpEnvelope`` with a ``cir``):
   ``ipUni.ingressBandwidthProfileEnvelope[0]``, ``ipUni.egressBandwidthProfileEnvelope[0]``, then the access link's
   ``ipUniAccessLink.ingressBwpEnvelope[0]`` / ``egressBwpEnvelope[0]``, then the IPVC end point's
   ``ipvc.ipvcEndPoint.ingressBandwidthProfileEnvelope[0]`` / ``egressBandwidthProfileEnvelope[0]`` (MEF 69.1 says
   those SHOULD be None, so they come last).
4. Older configurations: the first ``{amount, units}`` object (units bps, Kbps, Mbps, Gbps, Tbps, any case) under a
   key whose name contains "bandwidth", at any depth up to 8.

A rate that is malformed (no number, negative, unknown unit) counts as absent. ``None`` when nothing gives a rate.
Billing (``bilateral/billing/inputs.py``) and the inventory export (``inventory_reports``) share this one reading.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

# Mbit/s per unit: the MEF enum (decimal prefixes, 1 KBPS = 1000 bit/s); exact Decimals, never floats.
MEF_UNITS: dict[str, Decimal] = {
    unit: Decimal(10) ** (3 * power - 6)
    for power, unit in enumerate(("BPS", "KBPS", "MBPS", "GBPS", "TBPS", "PBPS", "EBPS", "ZBPS", "YBPS"))
}
LEGACY_UNITS: dict[str, Decimal] = {unit.lower(): MEF_UNITS[unit] for unit in ("BPS", "KBPS", "MBPS", "GBPS", "TBPS")}
MAX_DEPTH = 8  # legacy search: deep enough for any configuration we have seen, bounded against hostile nesting


def bandwidth_mbps(product_configuration: Any) -> Decimal | None:
    """The committed bandwidth in Mbit/s (see the module docstring for where it is read), or ``None``."""
    if not isinstance(product_configuration, Mapping):
        return None
    for reader in (_access_eline, _operator_uni, _internet_access):
        found = reader(product_configuration)
        if found is not None:
            return found
    return _legacy(product_configuration, under_bandwidth=False, depth=0)


def information_rate_mbps(rate: Any) -> Decimal | None:
    """An MEF ``InformationRate`` in Mbit/s, or ``None`` when it is not a well-formed one."""
    if not isinstance(rate, Mapping):
        return None
    factor = MEF_UNITS.get(str(rate.get("irUnits", "")).upper())
    value = _number(rate.get("irValue"))
    return None if factor is None or value is None else value * factor


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None  # JSON true is an int to Python, not a rate
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() and number >= 0 else None


def _get(node: Any, *path: str | int) -> Any:
    for step in path:
        if isinstance(step, int):
            if not isinstance(node, list) or len(node) <= step:
                return None
            node = node[step]
        else:
            if not isinstance(node, Mapping):
                return None
            node = node.get(step)
    return node


def _sum(rates: Iterable[Decimal | None]) -> Decimal | None:
    """The sum of the well-formed rates, ``None`` when there is none."""
    present = [rate for rate in rates if rate is not None]
    return sum(present, Decimal(0)) if present else None


def _per_class(entries: Any) -> Decimal | None:
    if not isinstance(entries, list):
        return None
    return _sum(information_rate_mbps(_get(entry, "bwpFlow", "cir")) for entry in entries)


def _access_eline(configuration: Mapping[str, Any]) -> Decimal | None:
    for end_point in ("uniEp", "enniEp"):
        ep = configuration.get(end_point)
        if not isinstance(ep, Mapping):
            continue
        for found in (
            _per_class(ep.get("ingressBandwidthProfilePerClassOfServiceName")),
            information_rate_mbps(_get(ep, "egressBandwidthProfilePerEndPoint", 0, "cir")),
            _per_class(ep.get("egressBwpPerEgressEquivalenceClassName")),
        ):
            if found is not None:
                return found
    return None


def _operator_uni(configuration: Mapping[str, Any]) -> Decimal | None:
    for profile in ("ingressBandwidthProfile", "egressBandwidthProfile"):
        found = information_rate_mbps(_get(configuration, profile, "cir"))
        if found is not None:
            return found
    return None


_INTERNET_ACCESS_PATHS: tuple[tuple[str, ...], ...] = (
    ("ipUni", "ingressBandwidthProfileEnvelope"),
    ("ipUni", "egressBandwidthProfileEnvelope"),
    ("ipUniAccessLink", "ingressBwpEnvelope"),
    ("ipUniAccessLink", "egressBwpEnvelope"),
    ("ipvc", "ipvcEndPoint", "ingressBandwidthProfileEnvelope"),
    ("ipvc", "ipvcEndPoint", "egressBandwidthProfileEnvelope"),
)


def _internet_access(configuration: Mapping[str, Any]) -> Decimal | None:
    for path in _INTERNET_ACCESS_PATHS:
        found = information_rate_mbps(_get(configuration, *path, 0, "cir"))
        if found is not None:
            return found
    return None


def _legacy(node: Any, *, under_bandwidth: bool, depth: int) -> Decimal | None:
    if depth > MAX_DEPTH:
        return None
    if isinstance(node, Mapping):
        if under_bandwidth and "amount" in node and "units" in node:
            factor = LEGACY_UNITS.get(str(node["units"]).lower())
            amount = _number(node["amount"])
            return None if factor is None or amount is None else amount * factor
        for key, value in node.items():
            found = _legacy(value, under_bandwidth=under_bandwidth or "bandwidth" in str(key).lower(), depth=depth + 1)
            if found is not None:
                return found
    elif isinstance(node, list):
        for item in node:
            found = _legacy(item, under_bandwidth=under_bandwidth, depth=depth + 1)
            if found is not None:
                return found
    return None
