"""Realistic product configurations (MEF 106 Access E-Line OVC, Operator UNI, MEF 139 Basic Internet Access) and
order documents, shared by the inventory, fulfilment and product-schema tests."""

from __future__ import annotations

import copy
from typing import Any

ACCESS_ELINE = "urn:mef:lso:spec:sonata:access-eline-ovc:v5.0.0:all"
OPERATOR_UNI = "urn:mef:lso:spec:sonata:carrier-ethernet-operator-uni:v5.0.0:all"
INTERNET_ACCESS = "urn:mef:lso:spec:cantata-sonata:basic-internet-access:v1.0.0:all"


def _bwp(cir_mbps: int) -> dict[str, Any]:
    return {
        "cir": {"irValue": cir_mbps, "irUnits": "MBPS"},
        "cbs": {"dataSizeValue": 12, "dataSizeUnits": "KBYTES"},
        "eir": {"irValue": 0, "irUnits": "MBPS"},
        "ebs": {"dataSizeValue": 0, "dataSizeUnits": "BYTES"},
        "couplingFlag": False,
        "colorMode": "COLOR_BLIND",
    }


def access_eline(cir_mbps: int = 100, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "@type": ACCESS_ELINE,
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
            "identifier": "UNI-EP-1",
            "ovcEndPointMap": {"mapType": "FORM_U", "ovcEndPointMapFormU": [100]},
            "ingressClassOfServiceMap": {"mapType": "ENDPOINT", "map_M": "H"},
            "ingressBandwidthProfilePerClassOfServiceName": [{"cosName": "H", "bwpFlow": _bwp(cir_mbps)}],
        },
        "enniEp": {"identifier": "ENNI-EP-1"},
    }
    config.update(overrides)
    return config


def operator_uni(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "@type": OPERATOR_UNI,
        "listOfPhysicalLinks": [
            {
                "id": "PL-1",
                "physicalLink": "1000BASE_LX",
                "uniConnectorType": "LC",
                "uniConnectorGender": "SOCKET",
                "autoNegotiation": "DISABLED",
                "synchronousEthernet": "DISABLED",
                "precisionTiming": "DISABLED",
            }
        ],
        "linkAggregation": "NONE",
        "aggregationLinkMap": [],
        "maximumServiceFrameSize": 1600,
        "defaultCeVlanId": 1,
        "maximumNumberOfEndPoints": 10,
        "maximumNumberOfCeVlanIdsPerEndPoint": 100,
        "ingressBandwidthProfile": [],
        "egressBandwidthProfile": [],
        "linkOam": "DISABLED",
        "meg": "DISABLED",
        "lagLinkMeg": "DISABLED",
        "tokenShare": "DISABLED",
    }
    config.update(overrides)
    return config


def internet_access(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "@type": INTERNET_ACCESS,
        "ipvc": {
            "ipvcEndPoint": {
                "ingressBandwidthProfileEnvelope": [
                    {"cir": {"irValue": 100, "irUnits": "MBPS"}, "maxIr": {"irValue": 100, "irUnits": "MBPS"}}
                ]
            }
        },
        "ipUni": {"ingressBandwidthProfileEnvelope": []},
        "ipUniAccessLink": {
            "identifier": "ACCESS-LINK-1",
            "connectionType": "POINT_TO_POINT",
            "mtu": 1500,
            "ipv4ConnectionAddressing": [{"ipv4PrimarySubnet": {"subscriberIpv4Address": ["203.0.113.10"]}}],
        },
        "ipUniAccessLinkTrunk": {},
    }
    config.update(overrides)
    return config


def site(site_id: str = "SITE-1", role: str = "INSTALL_LOCATION") -> dict[str, Any]:
    return {"@type": "GeographicSiteRef", "id": site_id, "role": role}


def add_item(item_id: str = "1", configuration: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": item_id,
        "action": "add",
        "product": {
            "productOffering": {"id": "ACCESS-ELINE-OVC"},
            "productConfiguration": configuration or access_eline(),
            "place": [site()],
        },
        "billingAccount": {"id": "BA-1"},
    }
    item.update(overrides)
    return item


def change_item(
    action: str, product_id: str, item_id: str = "1", configuration: dict[str, Any] | None = None
) -> dict[str, Any]:
    product: dict[str, Any] = {"id": product_id}
    if configuration is not None:
        product["productConfiguration"] = configuration
    return {"id": item_id, "action": action, "product": product}


def order_document(order_id: str, *items: dict[str, Any], external_id: str | None = None) -> dict[str, Any]:
    order: dict[str, Any] = {
        "id": order_id,
        "state": "inProgress",
        "productOrderItem": [copy.deepcopy(i) for i in items],
    }
    if external_id:
        order["externalId"] = external_id
    return order


def contact() -> dict[str, Any]:
    return {
        "emailAddress": "noc@buyer.example",
        "name": "Buyer NOC",
        "number": "+44 20 7946 0000",
        "role": "productOrderContact",
    }


def order_create(*items: dict[str, Any]) -> dict[str, Any]:
    """A ProductOrder_Create body for the Product Ordering API."""
    return {"externalId": "PO-0001", "relatedContactInformation": [contact()], "productOrderItem": list(items)}
