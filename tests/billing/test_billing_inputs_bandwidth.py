"""The billing run reads a product's bandwidth the way ``product_bandwidth`` does, labelled as price lists are."""

from __future__ import annotations

from typing import Any

import pytest

from sonata_dlt.bilateral.billing.inputs import product_key


def cir(value: Any, units: str) -> dict[str, Any]:
    return {"cir": {"irValue": value, "irUnits": units}}


@pytest.mark.parametrize(
    ("configuration", "bandwidth"),
    [
        # MEF Access E-Line OVC: committed rates per class of service add up.
        (
            {
                "@type": "urn:mef:lso:spec:sonata:accessElineOvc:v1.0.0:all",
                "uniEp": {
                    "ingressBandwidthProfilePerClassOfServiceName": [
                        {"bwpFlow": cir(600, "MBPS")},
                        {"bwpFlow": cir(400, "MBPS")},
                    ]
                },
            },
            "1000Mbps",
        ),
        ({"ingressBandwidthProfile": cir(1, "GBPS")}, "1000Mbps"),  # Operator UNI
        ({"ipUni": {"ingressBandwidthProfileEnvelope": [cir(500, "KBPS")]}}, "0.5Mbps"),  # Internet Access
        ({"bandwidth": {"amount": 10, "units": "Gbps"}}, "10000Mbps"),  # older {amount, units}
        ({"bandwidth": "100Mbps"}, "100Mbps"),  # a plain price-list label
        ({"colour": "blue"}, "-"),
    ],
)
def test_product_key_reads_the_committed_rate(configuration: dict[str, Any], bandwidth: str) -> None:
    document = {"productOffering": {"id": "accessEline"}, "productConfiguration": configuration}
    assert product_key(document) == ("accessEline", bandwidth)
