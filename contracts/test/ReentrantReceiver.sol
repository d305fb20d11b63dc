// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title ReentrantReceiver (test only)
/// @notice A malicious payee: when it receives OPEN it calls back into the paying contract with
/// `reenterData`. It records whether the re-entry was blocked instead of reverting, so a test can
/// see both that the guard fired and that the outer payment happened exactly once.
contract ReentrantReceiver {
    address public target;
    bytes public reenterData;
    uint256 public reentryAttempts;
    uint256 public reentryBlocked;
    uint256 public received;

    /// @notice Set which contract to call back and with what calldata on the next receive.
    function arm(address target_, bytes calldata reenterData_) external {
        target = target_;
        reenterData = reenterData_;
    }

    /// @notice Forward any call (stake, request, claim…) to `to` with `value` from this contract.
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
        received += msg.value;
        if (target != address(0) && reentryAttempts == 0) {
            reentryAttempts += 1;
            (bool ok,) = target.call(reenterData);
            if (!ok) reentryBlocked += 1;
        }
    }
}
