// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title RejectingReceiver (test only)
/// @notice Refuses every payment, to check that a failed payout reverts and loses nothing.
contract RejectingReceiver {
    error NoThanks();

    /// @notice Forward a call from this contract.
    function call(address to, uint256 value, bytes calldata data) external payable returns (bytes memory) {
        (bool ok, bytes memory ret) = to.call{value: value}(data);
        if (!ok) {
            assembly {
                revert(add(ret, 32), mload(ret))
            }
        }
        return ret;
    }

    receive() external payable {
        revert NoThanks();
    }
}
