// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

interface IModelPrices {
    function priceOf(uint256 modelId) external view returns (address owner, uint256 price);
}

interface IStaking {
    function isStaked(address account, uint8 role) external view returns (bool);
    function slashableOf(address account, uint8 role) external view returns (uint256);
    function slash(address account, uint8 role, uint256 amount) external returns (uint256);
}

/// @title AttributionLedger
/// @notice Pays for inferences, records who the answer came from, and splits each fee between
/// the protocol treasury, the model owner, the serving node and the data contributors.
/// @dev Lifecycle of an inference: `payForInference` (the whole `msg.value`, at least the model's
/// price, is escrowed as the fee) → `recordAttribution` by a staked node (report hash,
/// contributors with weights in basis points summing to 10,000, at most MAX_CONTRIBUTORS, in
/// strictly ascending address order so none repeats) → challenge window → `finalize` by anyone,
/// which credits claimable balances; `claim()` pulls them.
/// A staked validator may `challenge` inside the window with exactly `challengeBond`; the arbiter
/// `resolve`s: upheld → the node is slashed by min(slashAmount, its slashable node stake), the
/// challenger is credited bond + slashed amount, the payer is credited the fee back; rejected →
/// the bond is forfeited to the node (compensation for the delay) and the fee is split as usual.
/// If no node records within `recordTimeout`, the payer may take the fee back.
/// Fee split and rounding: treasury = fee·protocolBps/10⁴, owner = fee·ownerBps/10⁴, node =
/// fee·nodeBps/10⁴ (floors); the contributors' pool is the rest; contributor i gets
/// pool·bps_i/10⁴ (floor); every rounding remainder of the pool goes to the treasury, so the
/// credits always sum to the fee exactly. Invariant (tested): balance = escrowed fees + bonds +
/// unclaimed balances (an OPEN transfer forced in without a call, e.g. by SELFDESTRUCT, can only
/// make the balance larger, never leave a credit unbacked).
/// Deployment rule: the Staking cooldown must be at least the challenge window, so a node cannot
/// unstake and withdraw before a challenge against its latest record can be raised; a slash takes
/// whatever node stake is left (active + pending) when the arbiter resolves.
contract AttributionLedger is AccessControl, Pausable, ReentrancyGuard {
    bytes32 public constant ARBITER_ROLE = keccak256("ARBITER_ROLE");
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");
    bytes32 public constant PARAMS_ROLE = keccak256("PARAMS_ROLE");

    uint8 public constant ROLE_NODE = 1;
    uint8 public constant ROLE_VALIDATOR = 2;
    uint16 public constant BPS = 10_000;
    uint256 public constant MAX_CONTRIBUTORS = 64;

    enum Status {
        None,
        Paid,
        Recorded,
        Challenged,
        Finalized,
        Voided
    }

    struct Inference {
        address payer;
        address modelOwner;
        address node;
        address challenger;
        uint256 modelId;
        uint256 fee;
        uint256 bond;
        bytes32 reportHash;
        uint64 paidAt;
        uint64 recordedAt;
        Status status;
    }

    struct Split {
        uint16 protocolBps;
        uint16 modelOwnerBps;
        uint16 nodeBps;
    }

    error ZeroAddress();
    error BadSplit();
    error PaymentBelowPrice(uint256 price, uint256 paid);
    error UnknownInference(uint256 inferenceId);
    error WrongStatus(uint256 inferenceId, Status status);
    error NotStakedNode(address account);
    error NotStakedValidator(address account);
    error NoContributors();
    error TooManyContributors(uint256 count);
    error LengthMismatch();
    error ContributorsNotAscending(uint256 index);
    error ZeroWeight(uint256 index);
    error WeightsDoNotSum(uint256 total);
    error ChallengeWindowClosed(uint64 closedAt);
    error ChallengeWindowOpen(uint64 closesAt);
    error WrongBond(uint256 expected, uint256 sent);
    error SelfChallenge();
    error RecordTimeoutNotReached(uint64 refundableAt);
    error NotPayer();
    error NothingToClaim();
    error TransferFailed();
    error UnexpectedSender();

    event InferencePaid(uint256 indexed inferenceId, uint256 indexed modelId, address indexed payer, uint256 fee);
    event AttributionRecorded(
        uint256 indexed inferenceId, address indexed node, bytes32 reportHash, address[] contributors, uint16[] bps
    );
    event Challenged(uint256 indexed inferenceId, address indexed challenger, uint256 bond);
    event ChallengeResolved(uint256 indexed inferenceId, bool upheld, uint256 slashed);
    event FeeSplit(
        uint256 indexed inferenceId, uint256 treasury, uint256 modelOwner, uint256 node, uint256 contributors
    );
    event InferenceRefunded(uint256 indexed inferenceId, address indexed payer, uint256 fee);
    event Credited(address indexed account, uint256 amount, uint256 indexed inferenceId);
    event Claimed(address indexed account, uint256 amount);
    event ParamsChanged(uint16 protocolBps, uint16 modelOwnerBps, uint16 nodeBps, uint64 challengeWindow, uint256 challengeBond, uint256 slashAmount);
    event TreasuryChanged(address treasury);

    IModelPrices public immutable models;
    IStaking public immutable staking;
    address public treasury;
    Split public split;
    uint64 public challengeWindow;
    uint64 public recordTimeout;
    uint256 public challengeBond;
    uint256 public slashAmount;

    uint256 public inferenceCount;
    uint256 public totalEscrowed;
    uint256 public totalBonds;
    uint256 public totalClaimable;
    mapping(address => uint256) public claimable;
    mapping(uint256 => Inference) private _inferences;
    mapping(uint256 => address[]) private _contributors;
    mapping(uint256 => uint16[]) private _weights;

    constructor(
        address admin,
        address modelRegistry,
        address staking_,
        address treasury_,
        Split memory split_,
        uint64 challengeWindow_,
        uint64 recordTimeout_,
        uint256 challengeBond_,
        uint256 slashAmount_
    ) {
        if (admin == address(0) || modelRegistry == address(0) || staking_ == address(0) || treasury_ == address(0)) {
            revert ZeroAddress();
        }
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ARBITER_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
        _grantRole(PARAMS_ROLE, admin);
        models = IModelPrices(modelRegistry);
        staking = IStaking(staking_);
        treasury = treasury_;
        recordTimeout = recordTimeout_;
        _setParams(split_, challengeWindow_, challengeBond_, slashAmount_);
    }

    /// @notice Slashed OPEN arrives from the staking contract only.
    receive() external payable {
        if (msg.sender != address(staking)) revert UnexpectedSender();
    }

    // ---------------------------------------------------------------- lifecycle

    /// @notice Pay for one inference on an active model; all of `msg.value` (≥ price) is the fee.
    /// @return inferenceId The id the node records the attribution under.
    function payForInference(uint256 modelId) external payable whenNotPaused returns (uint256 inferenceId) {
        (address owner, uint256 price) = models.priceOf(modelId);
        if (msg.value < price || msg.value == 0) revert PaymentBelowPrice(price, msg.value);
        inferenceId = ++inferenceCount;
        Inference storage inf = _inferences[inferenceId];
        inf.payer = msg.sender;
        inf.modelOwner = owner;
        inf.modelId = modelId;
        inf.fee = msg.value;
        inf.paidAt = uint64(block.timestamp);
        inf.status = Status.Paid;
        totalEscrowed += msg.value;
        emit InferencePaid(inferenceId, modelId, msg.sender, msg.value);
    }

    /// @notice Record the attribution of a paid inference (staked node only, once).
    /// @param reportHash Hash of the attribution report the node produced.
    /// @param contributors Contributor addresses, strictly ascending.
    /// @param bps Their weights in basis points, each > 0, summing to 10,000.
    function recordAttribution(
        uint256 inferenceId,
        bytes32 reportHash,
        address[] calldata contributors,
        uint16[] calldata bps
    ) external whenNotPaused {
        if (!staking.isStaked(msg.sender, ROLE_NODE)) revert NotStakedNode(msg.sender);
        Inference storage inf = _require(inferenceId, Status.Paid);
        uint256 n = contributors.length;
        if (n == 0) revert NoContributors();
        if (n > MAX_CONTRIBUTORS) revert TooManyContributors(n);
        if (bps.length != n) revert LengthMismatch();
        uint256 total;
        for (uint256 i = 0; i < n; ++i) {
            if (contributors[i] == address(0)) revert ZeroAddress();
            if (i > 0 && contributors[i] <= contributors[i - 1]) revert ContributorsNotAscending(i);
            if (bps[i] == 0) revert ZeroWeight(i);
            total += bps[i];
        }
        if (total != BPS) revert WeightsDoNotSum(total);
        inf.node = msg.sender;
        inf.reportHash = reportHash;
        inf.recordedAt = uint64(block.timestamp);
        inf.status = Status.Recorded;
        _contributors[inferenceId] = contributors;
        _weights[inferenceId] = bps;
        emit AttributionRecorded(inferenceId, msg.sender, reportHash, contributors, bps);
    }

    /// @notice Challenge a recorded attribution inside the window, posting exactly `challengeBond`
    /// (staked validator only, not the node itself).
    function challenge(uint256 inferenceId) external payable whenNotPaused {
        if (!staking.isStaked(msg.sender, ROLE_VALIDATOR)) revert NotStakedValidator(msg.sender);
        Inference storage inf = _require(inferenceId, Status.Recorded);
        uint64 closes = inf.recordedAt + challengeWindow;
        if (block.timestamp >= closes) revert ChallengeWindowClosed(closes);
        if (msg.value != challengeBond) revert WrongBond(challengeBond, msg.value);
        if (msg.sender == inf.node) revert SelfChallenge();
        inf.challenger = msg.sender;
        inf.bond = msg.value;
        inf.status = Status.Challenged;
        totalBonds += msg.value;
        emit Challenged(inferenceId, msg.sender, msg.value);
    }

    /// @notice Settle a challenge (arbiter). Upheld: slash the node, reward the challenger,
    /// refund the payer. Rejected: the bond goes to the node and the fee is split.
    function resolve(uint256 inferenceId, bool upheld) external onlyRole(ARBITER_ROLE) nonReentrant {
        Inference storage inf = _require(inferenceId, Status.Challenged);
        uint256 bond = inf.bond;
        totalBonds -= bond;
        uint256 slashed;
        if (upheld) {
            inf.status = Status.Voided;
            uint256 slashable = staking.slashableOf(inf.node, ROLE_NODE);
            uint256 amount = slashAmount < slashable ? slashAmount : slashable;
            if (amount > 0) slashed = staking.slash(inf.node, ROLE_NODE, amount);
            _credit(inf.challenger, bond + slashed, inferenceId);
            totalEscrowed -= inf.fee;
            _credit(inf.payer, inf.fee, inferenceId);
            emit InferenceRefunded(inferenceId, inf.payer, inf.fee);
        } else {
            _credit(inf.node, bond, inferenceId);
            _split(inferenceId, inf);
        }
        emit ChallengeResolved(inferenceId, upheld, slashed);
    }

    /// @notice Split the fee of an unchallenged attribution once its window is over (anyone).
    function finalize(uint256 inferenceId) external whenNotPaused {
        Inference storage inf = _require(inferenceId, Status.Recorded);
        uint64 closes = inf.recordedAt + challengeWindow;
        if (block.timestamp < closes) revert ChallengeWindowOpen(closes);
        _split(inferenceId, inf);
    }

    /// @notice Take back the fee of an inference no node recorded within `recordTimeout` (payer).
    function cancelUnrecorded(uint256 inferenceId) external whenNotPaused {
        Inference storage inf = _require(inferenceId, Status.Paid);
        if (msg.sender != inf.payer) revert NotPayer();
        uint64 refundableAt = inf.paidAt + recordTimeout;
        if (block.timestamp < refundableAt) revert RecordTimeoutNotReached(refundableAt);
        inf.status = Status.Voided;
        totalEscrowed -= inf.fee;
        _credit(inf.payer, inf.fee, inferenceId);
        emit InferenceRefunded(inferenceId, inf.payer, inf.fee);
    }

    /// @notice Send the caller their whole claimable balance.
    function claim() external whenNotPaused nonReentrant returns (uint256 amount) {
        amount = claimable[msg.sender];
        if (amount == 0) revert NothingToClaim();
        claimable[msg.sender] = 0;
        totalClaimable -= amount;
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
        emit Claimed(msg.sender, amount);
    }

    // ---------------------------------------------------------------- views

    /// @notice An inference's state.
    function getInference(uint256 inferenceId) external view returns (Inference memory) {
        if (_inferences[inferenceId].status == Status.None) revert UnknownInference(inferenceId);
        return _inferences[inferenceId];
    }

    /// @notice The recorded contributors and weights of an inference.
    function getAttribution(uint256 inferenceId) external view returns (address[] memory, uint16[] memory) {
        return (_contributors[inferenceId], _weights[inferenceId]);
    }

    /// @notice What the fee split would credit: (treasury, model owner, node, per contributor).
    function previewSplit(uint256 fee, uint16[] memory bps)
        public
        view
        returns (uint256 toTreasury, uint256 toOwner, uint256 toNode, uint256[] memory toContributors)
    {
        Split memory s = split;
        toOwner = fee * s.modelOwnerBps / BPS;
        toNode = fee * s.nodeBps / BPS;
        uint256 base = fee * s.protocolBps / BPS;
        uint256 pool = fee - base - toOwner - toNode;
        toContributors = new uint256[](bps.length);
        uint256 paid;
        for (uint256 i = 0; i < bps.length; ++i) {
            toContributors[i] = pool * bps[i] / BPS;
            paid += toContributors[i];
        }
        // Every rounding remainder of the pool goes to the treasury.
        toTreasury = base + (pool - paid);
    }

    // ---------------------------------------------------------------- admin

    /// @notice Set the fee split, challenge window, challenge bond and slash amount (params role).
    function setParams(Split calldata split_, uint64 challengeWindow_, uint256 challengeBond_, uint256 slashAmount_)
        external
        onlyRole(PARAMS_ROLE)
    {
        _setParams(split_, challengeWindow_, challengeBond_, slashAmount_);
    }

    /// @notice Set the protocol treasury (params role). Affects splits made afterwards.
    function setTreasury(address treasury_) external onlyRole(PARAMS_ROLE) {
        if (treasury_ == address(0)) revert ZeroAddress();
        treasury = treasury_;
        emit TreasuryChanged(treasury_);
    }

    /// @notice Emergency stop of payments, records, challenges, finalization and claims (pauser).
    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    /// @notice Resume (pauser).
    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    // ---------------------------------------------------------------- internals

    function _setParams(Split memory s, uint64 window, uint256 bond, uint256 slashAmt) private {
        if (uint256(s.protocolBps) + s.modelOwnerBps + s.nodeBps > BPS) revert BadSplit();
        split = s;
        challengeWindow = window;
        challengeBond = bond;
        slashAmount = slashAmt;
        emit ParamsChanged(s.protocolBps, s.modelOwnerBps, s.nodeBps, window, bond, slashAmt);
    }

    function _require(uint256 inferenceId, Status expected) private view returns (Inference storage inf) {
        inf = _inferences[inferenceId];
        if (inf.status == Status.None) revert UnknownInference(inferenceId);
        if (inf.status != expected) revert WrongStatus(inferenceId, inf.status);
    }

    function _split(uint256 inferenceId, Inference storage inf) private {
        inf.status = Status.Finalized;
        uint256 fee = inf.fee;
        totalEscrowed -= fee;
        (uint256 toTreasury, uint256 toOwner, uint256 toNode, uint256[] memory toContributors) =
            previewSplit(fee, _weights[inferenceId]);
        _credit(treasury, toTreasury, inferenceId);
        _credit(inf.modelOwner, toOwner, inferenceId);
        _credit(inf.node, toNode, inferenceId);
        address[] storage cs = _contributors[inferenceId];
        uint256 pool;
        for (uint256 i = 0; i < cs.length; ++i) {
            _credit(cs[i], toContributors[i], inferenceId);
            pool += toContributors[i];
        }
        emit FeeSplit(inferenceId, toTreasury, toOwner, toNode, pool);
    }

    function _credit(address account, uint256 amount, uint256 inferenceId) private {
        if (amount == 0) return;
        claimable[account] += amount;
        totalClaimable += amount;
        emit Credited(account, amount, inferenceId);
    }
}
