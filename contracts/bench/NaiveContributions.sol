// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title NaiveContributions (benchmark baseline)
/// @notice The obvious way to bind contributions: every contributor sends one transaction per
/// record and the contract stores each hash. bench/chain.py compares it with DatanetRegistry.
contract NaiveContributions {
    error AlreadyContributed(bytes32 contentHash);

    event Contributed(uint256 indexed datanetId, address indexed contributor, bytes32 contentHash);

    mapping(uint256 => mapping(bytes32 => address)) public contributorOf;

    /// @notice Record that the caller contributed `contentHash` to `datanetId`.
    function contribute(uint256 datanetId, bytes32 contentHash) external {
        if (contributorOf[datanetId][contentHash] != address(0)) revert AlreadyContributed(contentHash);
        contributorOf[datanetId][contentHash] = msg.sender;
        emit Contributed(datanetId, msg.sender, contentHash);
    }
}
