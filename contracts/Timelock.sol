// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/// @title Timelock
/// @notice The default admin of the studio's contracts: every admin action (parameters, roles,
/// treasury, admin transfer) is proposed, waits `minDelay`, then is executed — in public.
/// @dev Plain OpenZeppelin TimelockController. In production the proposers and executors are
/// a multisig; on the devnet dev account 0 is both and the delay is short.
contract Timelock is TimelockController {
    constructor(uint256 minDelay, address[] memory proposers, address[] memory executors)
        TimelockController(minDelay, proposers, executors, address(0))
    {}
}
