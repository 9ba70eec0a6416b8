"""Where each API lives: the base paths of the Sonata APIs and of our extensions, as their specs' ``servers`` say
(``tests/test_base_paths.py`` checks them against ``openapi/``). Hrefs in documents, clients and the sandbox are
built from these, never from literals."""

SONATA = "/mefApi/sonata"

PRODUCT_ORDERING = f"{SONATA}/productOrderingManagement/v10"
PRODUCT_INVENTORY = f"{SONATA}/productInventory/v7"
CUSTOMER_BILL = f"{SONATA}/customerBillManagement/v2"
SELLER_FULFILMENT = f"{SONATA}/sellerFulfilment/v1"
SMART_BILATERAL = f"{SONATA}/smartBilateral/v1"
VERIFIABLE_LOG = f"{SONATA}/verifiableLog/v1"

# The buyer's listeners (MEF 123 §6.15): the hub's callback URL followed by these paths.
PRODUCT_ORDERING_NOTIFICATION = f"{SONATA}/productOrderingNotification/v10"
CUSTOMER_BILL_NOTIFICATION = f"{SONATA}/customerBillNotification/v2"
