"""Gas per anchor on an in-process py-evm chain (eth-tester), or on a node given as the first argument.

    python bench/bench_anchor_gas.py [RPC_URL]

Gas is a property of the contract and the calldata, not of the machine, so the numbers are exact and repeatable.
The sizes and origins cover the cases where calldata cost could differ: zero bytes in ``size`` are cheaper than
non-zero ones, and the origin's length must not matter (only its keccak hash is sent).
"""

from __future__ import annotations

import hashlib
import sys

from web3 import EthereumTesterProvider, Web3

from sonata_dlt.ledger import open_backend
from sonata_dlt.ledger.ethereum import deploy_anchor_contract


def main() -> None:
    w3 = Web3(Web3.HTTPProvider(sys.argv[1])) if len(sys.argv) > 1 else Web3(EthereumTesterProvider())
    address = deploy_anchor_contract(w3)
    ledger = open_backend("ethereum", {"provider": w3.provider, "contract_address": address})
    print(f"chain {w3.eth.chain_id}, AnchorLog at {address}")
    print(f"{'origin bytes':>12} {'size':>22} {'gas':>7}")
    for origin in ("a.example/log", "sonata.example.net/bilateral/7f3c9a21", "o" * 1000):
        for size in (0, 12345, 2**64 - 1):
            receipt = ledger.anchor(origin, size, hashlib.sha256(b"%d" % size).digest())
            gas = w3.eth.get_transaction_receipt(str(receipt.reference["transactionHash"]))["gasUsed"]
            print(f"{len(origin):>12} {size:>22} {gas:>7}")


if __name__ == "__main__":
    main()
