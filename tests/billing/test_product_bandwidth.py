"""Committed bandwidth read from MEF product configurations (Access E-Line, Operator UNI, Basic Internet Access)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from sonata_dlt.sonata.product_bandwidth import bandwidth_mbps, information_rate_mbps


def rate(value: Any, units: str) -> dict[str, Any]:
    return {"irValue": value, "irUnits": units}


def flow(cir: dict[str, Any]) -> dict[str, Any]:
    """A BwpFlow as the schema has it (only cir matters here)."""
    return {"cir": cir, "cbs": {"dataSizeValue": 12, "dataSizeUnits": "KBYTES"}, "eir": rate(0, "MBPS")}


@pytest.mark.parametrize(
    ("value", "units", "mbps"),
    [
        (70, "KBPS", "0.07"),
        (100, "MBPS", "100"),
        (1, "GBPS", "1000"),
        (2.5, "GBPS", "2500"),
        (1, "TBPS", "1000000"),
        (1, "PBPS", "1000000000"),
        (1, "YBPS", "1000000000000000000"),
        (1, "BPS", "0.000001"),
        (0, "MBPS", "0"),
        (100, "mbps", "100"),  # the enum is upper case; a lower-case unit is unambiguous all the same
        ("10", "MBPS", "10"),
    ],
)
def test_information_rates_convert_exactly(value: Any, units: str, mbps: str) -> None:
    found = information_rate_mbps(rate(value, units))
    assert isinstance(found, Decimal) and found == Decimal(mbps)


@pytest.mark.parametrize(
    "bad",
    [
        rate(-1, "MBPS"),
        rate(True, "MBPS"),
        rate("fast", "MBPS"),
        rate(float("nan"), "MBPS"),
        rate(10, "MIBPS"),
        {"irValue": 10},
        {"irUnits": "MBPS"},
        [10, "MBPS"],
        None,
    ],
)
def test_malformed_rates_are_absent(bad: Any) -> None:
    assert information_rate_mbps(bad) is None


def test_access_eline_sums_the_uni_ingress_cir_per_class_of_service() -> None:
    configuration = {
        "@type": "urn:mef:lso:spec:sonata:access-eline-ovc:v5.0.0:all",
        "uniEp": {
            "ingressBandwidthProfilePerClassOfServiceName": [
                {"classOfServiceName": "H", "bwpFlow": flow(rate(50, "MBPS"))},
                {"classOfServiceName": "L", "bwpFlow": flow(rate(0.5, "GBPS"))},
            ],
            "egressBandwidthProfilePerEndPoint": [flow(rate(9, "GBPS"))],
        },
        "enniEp": {"ingressBandwidthProfilePerClassOfServiceName": [{"bwpFlow": flow(rate(7, "GBPS"))}]},
    }
    assert bandwidth_mbps(configuration) == Decimal(550)


def test_access_eline_falls_back_to_egress_then_to_the_enni_end_point() -> None:
    egress_only = {"uniEp": {"egressBandwidthProfilePerEndPoint": [flow(rate(200, "MBPS"))]}}
    assert bandwidth_mbps(egress_only) == Decimal(200)
    per_eec = {"uniEp": {"egressBwpPerEgressEquivalenceClassName": [{"bwpFlow": flow(rate(1, "GBPS"))}]}}
    assert bandwidth_mbps(per_eec) == Decimal(1000)
    enni = {
        "uniEp": {"ingressBandwidthProfilePerClassOfServiceName": [], "egressBandwidthProfilePerEndPoint": []},
        "enniEp": {"ingressBandwidthProfilePerClassOfServiceName": [{"bwpFlow": flow(rate(300, "MBPS"))}]},
    }
    assert bandwidth_mbps(enni) == Decimal(300)
    # A malformed class is skipped, the well-formed ones still count.
    mixed = {
        "uniEp": {
            "ingressBandwidthProfilePerClassOfServiceName": [
                {"bwpFlow": flow(rate(100, "MBPS"))},
                {"bwpFlow": {"cir": rate(5, "furlongs")}},
                {"classOfServiceName": "no flow"},
            ]
        }
    }
    assert bandwidth_mbps(mixed) == Decimal(100)


def test_operator_uni_reads_ingress_then_egress_profile() -> None:
    uni = {
        "@type": "urn:mef:lso:spec:sonata:carrier-ethernet-operator-uni:v5.0.0:all",
        "ingressBandwidthProfile": flow(rate(1, "GBPS")),
        "egressBandwidthProfile": flow(rate(2, "GBPS")),
    }
    assert bandwidth_mbps(uni) == Decimal(1000)
    assert bandwidth_mbps({"egressBandwidthProfile": flow(rate(10, "GBPS"))}) == Decimal(10_000)


def test_basic_internet_access_envelopes() -> None:
    envelope = {"cir": rate(500, "MBPS"), "maxIr": rate(1, "GBPS"), "tE": 10, "burstBehavior": "OPTIMIZE_DELAY"}
    configuration: dict[str, Any] = {
        "@type": "urn:mef:lso:spec:cantata-sonata:basic-internet-access:v1.0.0:all",
        "ipvc": {"ipvcEndPoint": {"ingressBandwidthProfileEnvelope": [], "egressBandwidthProfileEnvelope": []}},
        "ipUni": {"ingressBandwidthProfileEnvelope": [envelope]},
        "ipUniAccessLink": {"ingressBwpEnvelope": [{"cir": rate(2, "GBPS")}]},
        "ipUniAccessLinkTrunk": {},
    }
    assert bandwidth_mbps(configuration) == Decimal(500)
    del configuration["ipUni"]
    assert bandwidth_mbps(configuration) == Decimal(2000)
    configuration["ipUniAccessLink"] = {"ingressBwpEnvelope": []}
    configuration["ipvc"]["ipvcEndPoint"]["egressBandwidthProfileEnvelope"] = [{"cir": rate(20, "MBPS")}]
    assert bandwidth_mbps(configuration) == Decimal(20)


def test_older_amount_and_units_still_read() -> None:
    assert bandwidth_mbps({"@type": "accessEline", "evcBandwidth": {"amount": 1, "units": "Gbps"}}) == Decimal(1000)
    assert bandwidth_mbps({"service": {"bandwidthProfile": [{"amount": "250", "units": "kbps"}]}}) == Decimal("0.25")
    # {amount, units} outside a "bandwidth" key is something else (a price, a size): not a bandwidth.
    assert bandwidth_mbps({"price": {"amount": 5, "units": "Mbps"}}) is None


@pytest.mark.parametrize("configuration", [None, [], "100 Mbps", {}, {"@type": "accessEline"}, {"uniEp": "x"}])
def test_no_bandwidth(configuration: Any) -> None:
    assert bandwidth_mbps(configuration) is None


def test_hostile_nesting_is_bounded() -> None:
    deep: dict[str, Any] = {"amount": 1, "units": "Mbps"}
    for _ in range(50):
        deep = {"bandwidth": deep}
    assert bandwidth_mbps(deep) is None
