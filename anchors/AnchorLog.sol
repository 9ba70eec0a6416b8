// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title AnchorLog: an event-only anchor log for sonata-dlt checkpoints.
/// @notice Every call appends one `Anchored` log entry to the chain and nothing else: there is no storage,
///         no owner and no state, so the contract cannot be paused, upgraded or emptied, and the cost of an
///         anchor is constant (about 23,800 gas on a Prague chain, under the 25,000 budget).
/// @dev Why a raw-calldata fallback rather than an ABI function `anchor(bytes32,uint64,bytes32)`:
///      calldata is the dominant variable cost (16 gas per non-zero byte, 4 per zero byte). An ABI call adds a
///      4-byte selector and 24 bytes of padding before `size`, plus the dispatcher and decoder, about 300 gas
///      more per anchor for nothing, since this contract has exactly one thing to do. The message is instead
///      the fixed 72 bytes
///
///          originHash (32) || size (8, big-endian uint64) || root (32)
///
///      and any other length reverts, as does any call carrying ether (the fallback is not payable).
///      Why keccak256(origin) rather than the origin string: a 32-byte topic keeps the cost independent of how
///      long an origin is, lets anyone filter a log's anchors with eth_getLogs on topic 1, and still binds the
///      exact origin string (a verifier recomputes the hash from the checkpoint's origin line). Logging the
///      string as well would cost 16 gas per byte of calldata plus 8 per byte of log data and break the budget
///      for origins longer than a few dozen bytes.
///      The log is emitted in the standard ABI layout of the `Anchored` event, so explorers and web3 libraries
///      decode it with the ABI in AnchorLog.json even though the call itself is not an ABI call.
///      Anyone may call it: an anchor proves only that (origin, size, root) was published at that block. Who
///      vouches for the checkpoint is the Ed25519 signature on the checkpoint itself, checked separately.
contract AnchorLog {
    /// @param originHash keccak256 of the checkpoint origin line (UTF-8, without the newline).
    /// @param size tree size of the anchored checkpoint.
    /// @param root RFC 9162 root hash of the tree at that size.
    event Anchored(bytes32 indexed originHash, uint64 size, bytes32 root);

    fallback() external {
        bytes32 topic = Anchored.selector;
        assembly {
            if iszero(eq(calldatasize(), 72)) { revert(0, 0) }
            // Scratch space 0x00..0x3f holds the 64 bytes of ABI-encoded event data: size then root.
            mstore(0x00, shr(192, calldataload(32)))
            mstore(0x20, calldataload(40))
            log2(0x00, 0x40, topic, calldataload(0))
        }
    }
}
