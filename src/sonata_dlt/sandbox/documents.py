"""Request bodies the scenario's OSS send: MEF product configurations and Sonata order documents.

Configurations follow MEF's product schemas (MEF 106 Access E-Line OVC ``access-eline-ovc:v5.0.0``, MEF 139
Basic Internet Access ``basic-internet-access:v1.0.0``). The repository does not ship MEF's schema files, so the
sandbox server accepts these types unchecked (``accept_unknown_product_types``); pointed at MEF's productSchema
tree, the same documents validate.

The product offering id is the agreement's price-list ``productType`` (``accessEline``, ``internetAccess``): that
is how the billing engine keys prices (``bilateral.billing.inputs.product_key``).

Bandwidth: MEF carries the committed rate as ``cir: {irValue, irUnits}`` (inside the bandwidth profiles), but the
server's readers do not read that shape yet: the billing run's price key (``inputs.product_key``) takes ``bandwidth``
or ``cir`` as a string or as ``{amount, units}``, and the seller's inventory snapshot (``inventory_reports``) takes
the first ``{amount, units}`` under a key naming "bandwidth". So each configuration also carries
``bandwidth: {amount, units: "Mbps"}`` at its top (``BANDWIDTH_FOR_BILLING``), which both read; without it every
product is priced at bandwidth "-" and reported without a bandwidth. It is not an MEF field: against MEF's product
schemas it must go once the server reads ``cir`` (``sonata.product_bandwidth``, being added).
"""

from __future__ import annotations

from typing import Any, Literal

ProductKind = Literal["accessEline", "internetAccess"]

ACCESS_ELINE = "urn:mef:lso:spec:sonata:access-eline-ovc:v5.0.0:all"
INTERNET_ACCESS = "urn:mef:lso:spec:cantata-sonata:basic-internet-access:v1.0.0:all"
PRODUCT_TYPES: dict[str, str] = {"accessEline": ACCESS_ELINE, "internetAccess": INTERNET_ACCESS}
BANDWIDTH_FOR_BILLING = "bandwidth"  # see the module docstring: what the billing run and the snapshot read today


def _bandwidth(cir_mbps: int) -> dict[str, Any]:
    return {"amount": cir_mbps, "units": "Mbps"}


def _bwp(cir_mbps: int) -> dict[str, Any]:
    return {
        "cir": {"irValue": cir_mbps, "irUnits": "MBPS"},
        "cbs": {"dataSizeValue": 12, "dataSizeUnits": "KBYTES"},
        "eir": {"irValue": 0, "irUnits": "MBPS"},
        "ebs": {"dataSizeValue": 0, "dataSizeUnits": "BYTES"},
        "couplingFlag": False,
        "colorMode": "COLOR_BLIND",
    }


def access_eline(cir_mbps: int, endpoint: str) -> dict[str, Any]:
    return {
        "@type": ACCESS_ELINE,
        BANDWIDTH_FOR_BILLING: _bandwidth(cir_mbps),
        "maximumFrameSize": 1600,
        "ceVlanIdPreservation": "PRESERVE",
        "cTagPcpPreservation": "ENABLED",
        "cTagDeiPreservation": "ENABLED",
        "listOfClassOfServiceNames": ["H"],
        "availableMegLevel": "3",
        "ovcL2cpAddressSet": "CTA",
        "carrierEthernetSls": [],
        "frameDisposition": {
            "unicastFrameDelivery": "UNCONDITIONAL",
            "multicastFrameDelivery": "UNCONDITIONAL",
            "broadcastFrameDelivery": "UNCONDITIONAL",
        },
        "uniEp": {
            "identifier": f"UNI-{endpoint}",
            "ovcEndPointMap": {"mapType": "FORM_U", "ovcEndPointMapFormU": [100]},
            "ingressClassOfServiceMap": {"mapType": "ENDPOINT", "map_M": "H"},
            "ingressBandwidthProfilePerClassOfServiceName": [{"cosName": "H", "bwpFlow": _bwp(cir_mbps)}],
        },
        "enniEp": {"identifier": f"ENNI-{endpoint}"},
    }


def internet_access(cir_mbps: int, endpoint: str) -> dict[str, Any]:
    envelope = {"cir": {"irValue": cir_mbps, "irUnits": "MBPS"}, "maxIr": {"irValue": cir_mbps, "irUnits": "MBPS"}}
    return {
        "@type": INTERNET_ACCESS,
        BANDWIDTH_FOR_BILLING: _bandwidth(cir_mbps),
        "ipvc": {"ipvcEndPoint": {"ingressBandwidthProfileEnvelope": [envelope]}},
        "ipUni": {"ingressBandwidthProfileEnvelope": []},
        "ipUniAccessLink": {
            "identifier": f"LINK-{endpoint}",
            "connectionType": "POINT_TO_POINT",
            "mtu": 1500,
            "ipv4ConnectionAddressing": [{"ipv4PrimarySubnet": {"subscriberIpv4Address": ["203.0.113.10"]}}],
        },
        "ipUniAccessLinkTrunk": {},
    }


def configuration(kind: ProductKind, cir_mbps: int, endpoint: str) -> dict[str, Any]:
    return access_eline(cir_mbps, endpoint) if kind == "accessEline" else internet_access(cir_mbps, endpoint)


def contact(buyer: str) -> dict[str, Any]:
    return {
        "emailAddress": f"noc@{buyer.lower()}.example",
        "name": f"{buyer} NOC",
        "number": "+44 20 7946 0000",
        "role": "productOrderContact",
    }


def add_order(buyer: str, external_id: str, kind: ProductKind, cir_mbps: int, site: str) -> dict[str, Any]:
    item = {
        "id": "1",
        "action": "add",
        "product": {
            "productOffering": {"id": kind},
            "productConfiguration": configuration(kind, cir_mbps, external_id),
            "place": [{"@type": "GeographicSiteRef", "id": site, "role": "INSTALL_LOCATION"}],
        },
        "billingAccount": {"id": f"BA-{buyer}"},
    }
    return {"externalId": external_id, "relatedContactInformation": [contact(buyer)], "productOrderItem": [item]}


def change_order(
    buyer: str,
    external_id: str,
    action: Literal["modify", "delete"],
    product_id: str,
    config: dict[str, Any] | None = None,
    offering: str | None = None,
) -> dict[str, Any]:
    product: dict[str, Any] = {"id": product_id}
    if config is not None:
        product["productConfiguration"] = config
    if offering is not None:
        product["productOffering"] = {"id": offering}
    item = {"id": "1", "action": action, "product": product}
    return {"externalId": external_id, "relatedContactInformation": [contact(buyer)], "productOrderItem": [item]}
