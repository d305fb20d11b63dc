// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControlDefaultAdminRules} from
    "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

interface ILedgerWindows {
    /// The shortest unstake cooldown the ledger's current challenge window + resolve period allow.
    function minUnstakeCooldown() external view returns (uint64);
}

/// @title Staking
/// @notice Native OPEN staked for a role (node or validator). Unstaking is two-step: request
/// (the amount stops counting at once) → cooldown → withdraw.
/// @dev Decisions: each (account, role) has an active stake and at most one pending unstake
/// (a new request adds to it and restarts the cooldown). A position keeps the minimum that was
/// in force when it was opened (a raised minimum applies to new stakes only); after a request
/// the remaining active stake must be zero or at least that minimum. Slashing is bounded by the
/// slashable stake = active + pending; active stake is slashed first.
/// The ledger (set once by the deployer right after deployment, never grantable) is the only
/// slasher and holds a lock on a node's stake for every attribution the node recorded that is
/// still open or challenged: a locked stake cannot be withdrawn. The cooldown is never shorter
/// than the ledger's challenge window + resolve period (checked here and by the ledger).
/// Pause blocks new stakes only: requesting an unstake and withdrawing always work.
contract Staking is AccessControlDefaultAdminRules, Pausable, ReentrancyGuard {
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");
    bytes32 public constant PARAMS_ROLE = keccak256("PARAMS_ROLE");

    uint8 public constant ROLE_NODE = 1;
    uint8 public constant ROLE_VALIDATOR = 2;
    uint256 public constant MAX_MIN_STAKE = 100_000_000 ether;
    uint64 public constant MIN_COOLDOWN = 60;
    uint64 public constant MAX_COOLDOWN = 90 days;

    struct Position {
        uint256 active;
        uint256 pending;
        uint64 unlockAt;
        /// The minimum in force when the position was opened.
        uint256 minimum;
        /// Open or challenged attributions recorded by this account (node role).
        uint64 locks;
    }

    error UnknownRole(uint8 role);
    error BelowMinimum(uint8 role, uint256 minimum, uint256 resulting);
    error ZeroAmount();
    error ZeroAddress();
    error InsufficientStake(uint256 available, uint256 requested);
    error NothingPending();
    error CooldownNotOver(uint64 unlockAt);
    error StakeLocked(uint64 openAttributions);
    error SlashExceedsStake(uint256 slashable, uint256 requested);
    error TransferFailed();
    error NotLedger(address caller);
    error NotDeployer(address caller);
    error LedgerAlreadySet(address ledger);
    error OutOfBounds(uint256 value, uint256 minimum, uint256 maximum);
    error CooldownBelowWindows(uint64 cooldown, uint64 minimum);

    event Staked(address indexed account, uint8 indexed role, uint256 amount, uint256 active);
    event UnstakeRequested(address indexed account, uint8 indexed role, uint256 amount, uint64 unlockAt);
    event Withdrawn(address indexed account, uint8 indexed role, uint256 amount);
    event Slashed(address indexed account, uint8 indexed role, uint256 amount, address indexed slasher);
    event MinimumChanged(uint8 indexed role, uint256 minimum);
    event CooldownChanged(uint64 cooldown);
    event LedgerSet(address ledger);
    event StakeLockChanged(address indexed account, uint8 indexed role, uint64 locks);

    address public immutable deployer;
    address public ledger;
    mapping(uint8 => uint256) public minStake;
    uint64 public cooldown;
    mapping(address => mapping(uint8 => Position)) private _positions;

    /// @param admin Default admin (a TimelockController in production); also holds PARAMS_ROLE.
    /// @param pauser Emergency pauser (a guardian multisig in production).
    /// @param adminDelay Delay of a default-admin transfer.
    constructor(
        address admin,
        address pauser,
        uint48 adminDelay,
        uint256 minNodeStake,
        uint256 minValidatorStake,
        uint64 cooldown_
    ) AccessControlDefaultAdminRules(adminDelay, admin) {
        if (pauser == address(0)) revert ZeroAddress();
        deployer = msg.sender;
        _grantRole(PAUSER_ROLE, pauser);
        _grantRole(PARAMS_ROLE, admin);
        _setMin(ROLE_NODE, minNodeStake);
        _setMin(ROLE_VALIDATOR, minValidatorStake);
        _bound(cooldown_, MIN_COOLDOWN, MAX_COOLDOWN);
        cooldown = cooldown_;
    }

    /// @notice Wire the AttributionLedger, once, from the deploying account: it becomes the only
    /// account that can slash and lock stakes. The cooldown must cover its windows.
    function setLedger(address ledger_) external {
        if (msg.sender != deployer) revert NotDeployer(msg.sender);
        if (ledger != address(0)) revert LedgerAlreadySet(ledger);
        if (ledger_ == address(0)) revert ZeroAddress();
        uint64 need = ILedgerWindows(ledger_).minUnstakeCooldown();
        if (cooldown < need) revert CooldownBelowWindows(cooldown, need);
        ledger = ledger_;
        emit LedgerSet(ledger_);
    }

    modifier onlyLedger() {
        if (msg.sender != ledger || ledger == address(0)) revert NotLedger(msg.sender);
        _;
    }

    /// @notice Stake `msg.value` for `role`; the resulting active stake must reach the minimum.
    function stake(uint8 role) external payable whenNotPaused {
        _requireKnownRole(role);
        if (msg.value == 0) revert ZeroAmount();
        Position storage p = _positions[msg.sender][role];
        if (p.active == 0) p.minimum = minStake[role]; // a new position takes today's minimum
        uint256 active = p.active + msg.value;
        if (active < p.minimum) revert BelowMinimum(role, p.minimum, active);
        p.active = active;
        emit Staked(msg.sender, role, msg.value, active);
    }

    /// @notice Start unstaking `amount`; it stops counting now and can be withdrawn after the
    /// cooldown (and once no attribution of the account is open). Works while paused.
    function requestUnstake(uint8 role, uint256 amount) external {
        _requireKnownRole(role);
        if (amount == 0) revert ZeroAmount();
        Position storage p = _positions[msg.sender][role];
        if (amount > p.active) revert InsufficientStake(p.active, amount);
        uint256 remaining = p.active - amount;
        if (remaining != 0 && remaining < p.minimum) revert BelowMinimum(role, p.minimum, remaining);
        p.active = remaining;
        p.pending += amount;
        p.unlockAt = uint64(block.timestamp) + cooldown;
        emit UnstakeRequested(msg.sender, role, amount, p.unlockAt);
    }

    /// @notice Withdraw the pending unstake once the cooldown is over and no attribution the
    /// account recorded is open or challenged. Works while paused.
    function withdraw(uint8 role) external nonReentrant {
        _requireKnownRole(role);
        Position storage p = _positions[msg.sender][role];
        uint256 amount = p.pending;
        if (amount == 0) revert NothingPending();
        if (block.timestamp < p.unlockAt) revert CooldownNotOver(p.unlockAt);
        if (p.locks > 0) revert StakeLocked(p.locks);
        p.pending = 0;
        p.unlockAt = 0;
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
        emit Withdrawn(msg.sender, role, amount);
    }

    /// @notice Slash up to the account's slashable stake for `role`; the OPEN goes to the ledger.
    /// @return The amount slashed (always `amount`; reverts when it exceeds the stake).
    function slash(address account, uint8 role, uint256 amount) external onlyLedger nonReentrant returns (uint256) {
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

    /// @notice Hold (`locked`) or release one lock on the account's stake (ledger only).
    function setLock(address account, uint8 role, bool locked) external onlyLedger {
        Position storage p = _positions[account][role];
        if (locked) ++p.locks;
        else if (p.locks > 0) --p.locks;
        emit StakeLockChanged(account, role, p.locks);
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

    /// @notice Whether the account's active stake is non-zero and meets its position's minimum.
    function isStaked(address account, uint8 role) external view returns (bool) {
        Position storage p = _positions[account][role];
        return p.active > 0 && p.active >= p.minimum;
    }

    /// @notice Set a role's minimum stake for new positions (params role; bounded).
    function setMinStake(uint8 role, uint256 minimum) external onlyRole(PARAMS_ROLE) {
        _requireKnownRole(role);
        _setMin(role, minimum);
    }

    /// @notice Set the unstake cooldown in seconds (params role; bounded, and never below the
    /// ledger's challenge window + resolve period).
    function setCooldown(uint64 cooldown_) external onlyRole(PARAMS_ROLE) {
        _bound(cooldown_, MIN_COOLDOWN, MAX_COOLDOWN);
        if (ledger != address(0)) {
            uint64 need = ILedgerWindows(ledger).minUnstakeCooldown();
            if (cooldown_ < need) revert CooldownBelowWindows(cooldown_, need);
        }
        cooldown = cooldown_;
        emit CooldownChanged(cooldown_);
    }

    /// @notice Emergency stop of new stakes (pauser). Unstaking and withdrawing keep working.
    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    /// @notice Resume (pauser).
    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    function _setMin(uint8 role, uint256 minimum) private {
        _bound(minimum, 1, MAX_MIN_STAKE);
        minStake[role] = minimum;
        emit MinimumChanged(role, minimum);
    }

    function _bound(uint256 value, uint256 lo, uint256 hi) private pure {
        if (value < lo || value > hi) revert OutOfBounds(value, lo, hi);
    }

    function _requireKnownRole(uint8 role) private pure {
        if (role != ROLE_NODE && role != ROLE_VALIDATOR) revert UnknownRole(role);
    }
}
