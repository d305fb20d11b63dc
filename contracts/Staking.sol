// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

/// @title Staking
/// @notice Native OPEN staked for a role (node or validator). Unstaking is two-step: request
/// (the amount stops counting at once) → cooldown → withdraw.
/// @dev Decisions: each (account, role) has an active stake and at most one pending unstake
/// (a new request adds to it and restarts the cooldown). After a request the remaining active
/// stake must be zero or at least the role's minimum. Slashing is bounded by the account's
/// slashable stake for the role = active + pending (so a request cannot escape a slash); active
/// stake is slashed first. Slashed OPEN is sent to the slasher (e.g. the AttributionLedger,
/// which credits the challenger). Pause blocks stake/request/withdraw, never slashing.
contract Staking is AccessControl, Pausable, ReentrancyGuard {
    bytes32 public constant SLASHER_ROLE = keccak256("SLASHER_ROLE");
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");
    bytes32 public constant PARAMS_ROLE = keccak256("PARAMS_ROLE");

    uint8 public constant ROLE_NODE = 1;
    uint8 public constant ROLE_VALIDATOR = 2;

    struct Position {
        uint256 active;
        uint256 pending;
        uint64 unlockAt;
    }

    error UnknownRole(uint8 role);
    error BelowMinimum(uint8 role, uint256 minimum, uint256 resulting);
    error ZeroAmount();
    error InsufficientStake(uint256 available, uint256 requested);
    error NothingPending();
    error CooldownNotOver(uint64 unlockAt);
    error SlashExceedsStake(uint256 slashable, uint256 requested);
    error TransferFailed();

    event Staked(address indexed account, uint8 indexed role, uint256 amount, uint256 active);
    event UnstakeRequested(address indexed account, uint8 indexed role, uint256 amount, uint64 unlockAt);
    event Withdrawn(address indexed account, uint8 indexed role, uint256 amount);
    event Slashed(address indexed account, uint8 indexed role, uint256 amount, address indexed slasher);
    event MinimumChanged(uint8 indexed role, uint256 minimum);
    event CooldownChanged(uint64 cooldown);

    mapping(uint8 => uint256) public minStake;
    uint64 public cooldown;
    mapping(address => mapping(uint8 => Position)) private _positions;

    constructor(address admin, uint256 minNodeStake, uint256 minValidatorStake, uint64 cooldown_) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
        _grantRole(PARAMS_ROLE, admin);
        minStake[ROLE_NODE] = minNodeStake;
        minStake[ROLE_VALIDATOR] = minValidatorStake;
        cooldown = cooldown_;
    }

    /// @notice Stake `msg.value` for `role`; the resulting active stake must reach the minimum.
    function stake(uint8 role) external payable whenNotPaused {
        _requireKnownRole(role);
        if (msg.value == 0) revert ZeroAmount();
        Position storage p = _positions[msg.sender][role];
        uint256 active = p.active + msg.value;
        if (active < minStake[role]) revert BelowMinimum(role, minStake[role], active);
        p.active = active;
        emit Staked(msg.sender, role, msg.value, active);
    }

    /// @notice Start unstaking `amount`; it stops counting now and can be withdrawn after the cooldown.
    function requestUnstake(uint8 role, uint256 amount) external whenNotPaused {
        _requireKnownRole(role);
        if (amount == 0) revert ZeroAmount();
        Position storage p = _positions[msg.sender][role];
        if (amount > p.active) revert InsufficientStake(p.active, amount);
        uint256 remaining = p.active - amount;
        if (remaining != 0 && remaining < minStake[role]) revert BelowMinimum(role, minStake[role], remaining);
        p.active = remaining;
        p.pending += amount;
        p.unlockAt = uint64(block.timestamp) + cooldown;
        emit UnstakeRequested(msg.sender, role, amount, p.unlockAt);
    }

    /// @notice Withdraw the pending unstake once the cooldown is over.
    function withdraw(uint8 role) external whenNotPaused nonReentrant {
        _requireKnownRole(role);
        Position storage p = _positions[msg.sender][role];
        uint256 amount = p.pending;
        if (amount == 0) revert NothingPending();
        if (block.timestamp < p.unlockAt) revert CooldownNotOver(p.unlockAt);
        p.pending = 0;
        p.unlockAt = 0;
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
        emit Withdrawn(msg.sender, role, amount);
    }

    /// @notice Slash up to the account's slashable stake for `role`; the OPEN goes to the caller.
    /// @return The amount slashed (always `amount`; reverts when it exceeds the stake).
    function slash(address account, uint8 role, uint256 amount) external onlyRole(SLASHER_ROLE) nonReentrant returns (uint256) {
        _requireKnownRole(role);
        if (amount == 0) revert ZeroAmount();
        Position storage p = _positions[account][role];
        uint256 slashable = p.active + p.pending;
        if (amount > slashable) revert SlashExceedsStake(slashable, amount);
        uint256 fromActive = amount <= p.active ? amount : p.active;
        p.active -= fromActive;
        p.pending -= amount - fromActive;
        emit Slashed(account, role, amount, msg.sender);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
        return amount;
    }

    /// @notice An account's position for a role.
    function positionOf(address account, uint8 role) external view returns (Position memory) {
        return _positions[account][role];
    }

    /// @notice Active + pending stake (what a slash can take).
    function slashableOf(address account, uint8 role) external view returns (uint256) {
        Position storage p = _positions[account][role];
        return p.active + p.pending;
    }

    /// @notice Whether the account's active stake meets the role's minimum (and is non-zero).
    function isStaked(address account, uint8 role) external view returns (bool) {
        uint256 a = _positions[account][role].active;
        return a > 0 && a >= minStake[role];
    }

    /// @notice Set a role's minimum stake (params role).
    function setMinStake(uint8 role, uint256 minimum) external onlyRole(PARAMS_ROLE) {
        _requireKnownRole(role);
        minStake[role] = minimum;
        emit MinimumChanged(role, minimum);
    }

    /// @notice Set the unstake cooldown in seconds (params role).
    function setCooldown(uint64 cooldown_) external onlyRole(PARAMS_ROLE) {
        cooldown = cooldown_;
        emit CooldownChanged(cooldown_);
    }

    /// @notice Emergency stop of stake/unstake/withdraw (pauser).
    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    /// @notice Resume (pauser).
    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    function _requireKnownRole(uint8 role) private pure {
        if (role != ROLE_NODE && role != ROLE_VALIDATOR) revert UnknownRole(role);
    }
}
