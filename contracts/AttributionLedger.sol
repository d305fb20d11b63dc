// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControlDefaultAdminRules} from
    "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

interface IModels {
    struct SnapshotRef {
        uint256 datanetId;
        uint64 version;
    }

    function priceOf(uint256 modelId) external view returns (address owner, uint256 price);
    function getTrainingSnapshots(uint256 modelId) external view returns (SnapshotRef[] memory);
    function datanets() external view returns (address);
}

interface IPayees {
    function isPayee(uint256 datanetId, uint64 version, address account) external view returns (bool);
}

interface IStaking {
    function isStaked(address account, uint8 role) external view returns (bool);
    function slashableOf(address account, uint8 role) external view returns (uint256);
    function slash(address account, uint8 role, uint256 amount) external returns (uint256);
    function setLock(address account, uint8 role, bool locked) external;
    function cooldown() external view returns (uint64);
}

/// @title AttributionLedger
/// @notice Pays for inferences, records who the answer came from, and splits each fee between
/// the protocol treasury, the model owner, the serving node and the data contributors.
/// @dev Lifecycle of an inference:
/// - `payForInference(modelId, node)`: the payer names the staked node that serves it; the fee
///   is the model's price (anything sent above it is refunded at once). The terms in force now
///   (split, windows, bond, slash amount) are copied into the inference: a later parameter
///   change never applies to a fee already paid.
/// - `recordAttribution` by that node only (report hash, contributors with weights in basis
///   points summing to 10,000, at most MAX_CONTRIBUTORS, strictly ascending). Every contributor
///   must be a payee of one of the model's training snapshots (a contributor with bound records
///   in it, or the Datanet's owner), so a node cannot name itself or strangers. Recording locks
///   the node's stake until the inference is settled.
/// - challenge window → `finalize` by anyone, which credits claimable balances; `claim()` pulls.
/// - Anyone but the node may `challenge` inside the window with exactly the inference's bond.
///   The arbiter (a role meant for a multisig or committee) `resolve`s within the resolve
///   period: upheld → the node is slashed by min(slash amount, its slashable stake), the
///   challenger is credited bond + slashed amount, the payer gets the fee back; rejected → the
///   bond goes to the node and the fee is split as usual.
/// - Rule when the arbiter misses the resolve deadline (`settleUnresolved`, anyone): nobody is
///   judged — the payer is credited the fee back, the challenger the bond, the node is neither
///   slashed nor paid, and its stake lock is released.
/// - If the node does not record within the record timeout, the payer may take the fee back.
/// All windows run on the ledger clock (`clock()` = time minus time spent paused), so a pause
/// extends every window and timeout by its length. Pause stops payments, records and
/// challenges; claiming, refunds, finalizing and settling keep working.
/// Fee split and rounding: treasury = fee·protocolBps/10⁴, owner = fee·ownerBps/10⁴, node =
/// fee·nodeBps/10⁴ (floors); the contributors' pool is the rest; contributor i gets
/// pool·bps_i/10⁴ (floor); every rounding remainder of the pool goes to the treasury, so the
/// credits always sum to the fee exactly. Invariant (tested): balance = escrowed fees + bonds +
/// unclaimed balances (an OPEN transfer forced in without a call can only make it larger).
contract AttributionLedger is AccessControlDefaultAdminRules, Pausable, ReentrancyGuard {
    bytes32 public constant ARBITER_ROLE = keccak256("ARBITER_ROLE");
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");
    bytes32 public constant PARAMS_ROLE = keccak256("PARAMS_ROLE");

    uint8 public constant ROLE_NODE = 1;
    uint16 public constant BPS = 10_000;
    uint256 public constant MAX_CONTRIBUTORS = 64;
    // Bounds of every parameter.
    uint16 public constant MAX_PROTOCOL_BPS = 1_000;
    uint16 public constant MAX_OWNER_BPS = 5_000;
    uint16 public constant MAX_NODE_BPS = 5_000;
    uint16 public constant MIN_CONTRIBUTORS_BPS = 2_000;
    uint64 public constant MIN_WINDOW = 60;
    uint64 public constant MAX_WINDOW = 30 days;
    uint256 public constant MAX_BOND = 1_000_000 ether;
    uint256 public constant MAX_SLASH = 10_000_000 ether;

    enum Status {
        None,
        Paid,
        Recorded,
        Challenged,
        Finalized,
        Voided
    }

    /// Everything that decides how an inference settles; copied into it when it is paid.
    struct Terms {
        uint16 protocolBps;
        uint16 modelOwnerBps;
        uint16 nodeBps;
        uint64 challengeWindow;
        uint64 recordTimeout;
        uint64 resolvePeriod;
        uint256 challengeBond;
        uint256 slashAmount;
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
        uint64 paidAt; // ledger clock
        uint64 recordedAt; // ledger clock
        uint64 challengedAt; // ledger clock
        Status status;
        Terms terms;
    }

    error ZeroAddress();
    error OutOfBounds(string what, uint256 value);
    error CooldownTooShort(uint64 cooldown, uint64 needed);
    error PaymentBelowPrice(uint256 price, uint256 paid);
    error UnknownInference(uint256 inferenceId);
    error WrongStatus(uint256 inferenceId, Status status);
    error NotStakedNode(address account);
    error NotServingNode(address expected, address caller);
    error NoContributors();
    error TooManyContributors(uint256 count);
    error LengthMismatch();
    error ContributorsNotAscending(uint256 index);
    error NotAPayee(address contributor);
    error ZeroWeight(uint256 index);
    error WeightsDoNotSum(uint256 total);
    error ChallengeWindowClosed(uint64 closedAt);
    error ChallengeWindowOpen(uint64 closesAt);
    error ResolveDeadlinePassed(uint64 deadline);
    error ResolveDeadlineNotReached(uint64 deadline);
    error WrongBond(uint256 expected, uint256 sent);
    error SelfChallenge();
    error RecordTimeoutNotReached(uint64 refundableAt);
    error NotPayer();
    error NothingToClaim();
    error TransferFailed();
    error UnexpectedSender();

    event InferencePaid(
        uint256 indexed inferenceId, uint256 indexed modelId, address indexed payer, uint256 fee, address node
    );
    event AttributionRecorded(
        uint256 indexed inferenceId, address indexed node, bytes32 reportHash, address[] contributors, uint16[] bps
    );
    event Challenged(uint256 indexed inferenceId, address indexed challenger, uint256 bond);
    event ChallengeResolved(uint256 indexed inferenceId, bool upheld, uint256 slashed);
    event ChallengeExpired(uint256 indexed inferenceId);
    event FeeSplit(
        uint256 indexed inferenceId, uint256 treasury, uint256 modelOwner, uint256 node, uint256 contributors
    );
    event InferenceRefunded(uint256 indexed inferenceId, address indexed payer, uint256 fee);
    event Credited(address indexed account, uint256 amount, uint256 indexed inferenceId);
    event Claimed(address indexed account, uint256 amount);
    event ParamsChanged(Terms terms);
    event TreasuryChanged(address treasury);

    IModels public immutable models;
    IStaking public immutable staking;
    address public treasury;
    Terms public terms;

    uint256 public inferenceCount;
    uint256 public totalEscrowed;
    uint256 public totalBonds;
    uint256 public totalClaimable;
    /// Seconds spent paused before the current pause (the ledger clock stands still while paused).
    uint64 public pausedTotal;
    uint64 public pausedSince;
    mapping(address => uint256) public claimable;
    mapping(uint256 => Inference) private _inferences;
    mapping(uint256 => address[]) private _contributors;
    mapping(uint256 => uint16[]) private _weights;

    /// @param admin Default admin (a TimelockController in production); also holds PARAMS_ROLE.
    /// @param pauser Emergency pauser (a guardian multisig in production).
    /// @param arbiter Resolves challenges (a multisig or committee in production).
    /// @param adminDelay Delay of a default-admin transfer.
    constructor(
        address admin,
        address pauser,
        address arbiter,
        uint48 adminDelay,
        address modelRegistry,
        address staking_,
        address treasury_,
        Terms memory terms_
    ) AccessControlDefaultAdminRules(adminDelay, admin) {
        if (
            pauser == address(0) || arbiter == address(0) || modelRegistry == address(0)
                || staking_ == address(0) || treasury_ == address(0)
        ) revert ZeroAddress();
        _grantRole(ARBITER_ROLE, arbiter);
        _grantRole(PAUSER_ROLE, pauser);
        _grantRole(PARAMS_ROLE, admin);
        models = IModels(modelRegistry);
        staking = IStaking(staking_);
        treasury = treasury_;
        _checkTerms(terms_);
        terms = terms_;
        emit ParamsChanged(terms_);
    }

    /// @notice Slashed OPEN arrives from the staking contract only.
    receive() external payable {
        if (msg.sender != address(staking)) revert UnexpectedSender();
    }

    // ---------------------------------------------------------------- lifecycle

    /// @notice Pay the model's price for one inference served by `node` (a staked node). Any
    /// amount above the price is refunded in the same transaction.
    /// @return inferenceId The id the node records the attribution under.
    function payForInference(uint256 modelId, address node)
        external
        payable
        whenNotPaused
        nonReentrant
        returns (uint256 inferenceId)
    {
        (address owner, uint256 price) = models.priceOf(modelId); // reverts while ModelRegistry is paused
        if (msg.value < price || price == 0) revert PaymentBelowPrice(price, msg.value);
        if (!staking.isStaked(node, ROLE_NODE)) revert NotStakedNode(node);
        inferenceId = ++inferenceCount;
        Inference storage inf = _inferences[inferenceId];
        inf.payer = msg.sender;
        inf.modelOwner = owner;
        inf.node = node;
        inf.modelId = modelId;
        inf.fee = price;
        inf.paidAt = clock();
        inf.status = Status.Paid;
        inf.terms = terms;
        totalEscrowed += price;
        emit InferencePaid(inferenceId, modelId, msg.sender, price, node);
        uint256 change = msg.value - price;
        if (change > 0) {
            (bool ok,) = msg.sender.call{value: change}("");
            if (!ok) _credit(msg.sender, change, inferenceId); // a payer that refuses OPEN claims it
        }
    }

    /// @notice Record the attribution of a paid inference (the node named at payment, once).
    /// @param reportHash Hash of the attribution report the node produced.
    /// @param contributors Payees of the model's training snapshots, strictly ascending.
    /// @param bps Their weights in basis points, each > 0, summing to 10,000.
    function recordAttribution(
        uint256 inferenceId,
        bytes32 reportHash,
        address[] calldata contributors,
        uint16[] calldata bps
    ) external whenNotPaused {
        Inference storage inf = _require(inferenceId, Status.Paid);
        if (msg.sender != inf.node) revert NotServingNode(inf.node, msg.sender);
        if (!staking.isStaked(msg.sender, ROLE_NODE)) revert NotStakedNode(msg.sender);
        uint256 n = contributors.length;
        if (n == 0) revert NoContributors();
        if (n > MAX_CONTRIBUTORS) revert TooManyContributors(n);
        if (bps.length != n) revert LengthMismatch();
        IModels.SnapshotRef[] memory snaps = models.getTrainingSnapshots(inf.modelId);
        IPayees payees = IPayees(models.datanets());
        uint256 total;
        for (uint256 i = 0; i < n; ++i) {
            address c = contributors[i];
            if (c == address(0)) revert ZeroAddress();
            if (i > 0 && c <= contributors[i - 1]) revert ContributorsNotAscending(i);
            if (bps[i] == 0) revert ZeroWeight(i);
            if (!_isPayee(payees, snaps, c)) revert NotAPayee(c);
            total += bps[i];
        }
        if (total != BPS) revert WeightsDoNotSum(total);
        inf.reportHash = reportHash;
        inf.recordedAt = clock();
        inf.status = Status.Recorded;
        _contributors[inferenceId] = contributors;
        _weights[inferenceId] = bps;
        staking.setLock(msg.sender, ROLE_NODE, true);
        emit AttributionRecorded(inferenceId, msg.sender, reportHash, contributors, bps);
    }

    /// @notice Challenge a recorded attribution inside its window, posting exactly its bond
    /// (anyone but the node).
    function challenge(uint256 inferenceId) external payable whenNotPaused {
        Inference storage inf = _require(inferenceId, Status.Recorded);
        uint64 closes = inf.recordedAt + inf.terms.challengeWindow;
        if (clock() >= closes) revert ChallengeWindowClosed(closes);
        if (msg.value != inf.terms.challengeBond) revert WrongBond(inf.terms.challengeBond, msg.value);
        if (msg.sender == inf.node) revert SelfChallenge();
        inf.challenger = msg.sender;
        inf.bond = msg.value;
        inf.challengedAt = clock();
        inf.status = Status.Challenged;
        totalBonds += msg.value;
        emit Challenged(inferenceId, msg.sender, msg.value);
    }

    /// @notice Settle a challenge (arbiter, before the resolve deadline). Upheld: slash the
    /// node, reward the challenger, refund the payer. Rejected: the bond goes to the node and
    /// the fee is split.
    function resolve(uint256 inferenceId, bool upheld) external onlyRole(ARBITER_ROLE) nonReentrant {
        Inference storage inf = _require(inferenceId, Status.Challenged);
        uint64 deadline = inf.challengedAt + inf.terms.resolvePeriod;
        if (clock() >= deadline) revert ResolveDeadlinePassed(deadline);
        uint256 bond = inf.bond;
        totalBonds -= bond;
        staking.setLock(inf.node, ROLE_NODE, false);
        uint256 slashed;
        if (upheld) {
            inf.status = Status.Voided;
            uint256 slashable = staking.slashableOf(inf.node, ROLE_NODE);
            uint256 amount = inf.terms.slashAmount < slashable ? inf.terms.slashAmount : slashable;
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

    /// @notice After a missed resolve deadline (anyone): the payer gets the fee back, the
    /// challenger the bond; the node is neither slashed nor paid and its stake is unlocked.
    function settleUnresolved(uint256 inferenceId) external nonReentrant {
        Inference storage inf = _require(inferenceId, Status.Challenged);
        uint64 deadline = inf.challengedAt + inf.terms.resolvePeriod;
        if (clock() < deadline) revert ResolveDeadlineNotReached(deadline);
        inf.status = Status.Voided;
        totalBonds -= inf.bond;
        totalEscrowed -= inf.fee;
        staking.setLock(inf.node, ROLE_NODE, false);
        _credit(inf.challenger, inf.bond, inferenceId);
        _credit(inf.payer, inf.fee, inferenceId);
        emit InferenceRefunded(inferenceId, inf.payer, inf.fee);
        emit ChallengeExpired(inferenceId);
    }

    /// @notice Split the fee of an unchallenged attribution once its window is over (anyone).
    function finalize(uint256 inferenceId) external {
        Inference storage inf = _require(inferenceId, Status.Recorded);
        uint64 closes = inf.recordedAt + inf.terms.challengeWindow;
        if (clock() < closes) revert ChallengeWindowOpen(closes);
        staking.setLock(inf.node, ROLE_NODE, false);
        _split(inferenceId, inf);
    }

    /// @notice Take back the fee of an inference its node did not record within the record
    /// timeout (payer). Works while paused.
    function cancelUnrecorded(uint256 inferenceId) external {
        Inference storage inf = _require(inferenceId, Status.Paid);
        if (msg.sender != inf.payer) revert NotPayer();
        uint64 refundableAt = inf.paidAt + inf.terms.recordTimeout;
        if (clock() < refundableAt) revert RecordTimeoutNotReached(refundableAt);
        inf.status = Status.Voided;
        totalEscrowed -= inf.fee;
        _credit(inf.payer, inf.fee, inferenceId);
        emit InferenceRefunded(inferenceId, inf.payer, inf.fee);
    }

    /// @notice Send the caller their whole claimable balance. Works while paused.
    function claim() external nonReentrant returns (uint256 amount) {
        amount = claimable[msg.sender];
        if (amount == 0) revert NothingToClaim();
        claimable[msg.sender] = 0;
        totalClaimable -= amount;
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
        emit Claimed(msg.sender, amount);
    }

    // ---------------------------------------------------------------- views

    /// @notice The ledger clock: block time minus the time spent paused.
    function clock() public view returns (uint64) {
        uint64 paused_ = paused() ? uint64(block.timestamp) - pausedSince : 0;
        return uint64(block.timestamp) - pausedTotal - paused_;
    }

    /// @notice The shortest unstake cooldown the current terms allow (challenge window + resolve period).
    function minUnstakeCooldown() public view returns (uint64) {
        return terms.challengeWindow + terms.resolvePeriod;
    }

    /// @notice An inference's state (times on the ledger clock).
    function getInference(uint256 inferenceId) external view returns (Inference memory) {
        if (_inferences[inferenceId].status == Status.None) revert UnknownInference(inferenceId);
        return _inferences[inferenceId];
    }

    /// @notice The recorded contributors and weights of an inference.
    function getAttribution(uint256 inferenceId) external view returns (address[] memory, uint16[] memory) {
        return (_contributors[inferenceId], _weights[inferenceId]);
    }

    /// @notice What the fee split under the current terms would credit: (treasury, model owner,
    /// node, per contributor).
    function previewSplit(uint256 fee, uint16[] memory bps)
        public
        view
        returns (uint256 toTreasury, uint256 toOwner, uint256 toNode, uint256[] memory toContributors)
    {
        return _splitAmounts(terms, fee, bps);
    }

    // ---------------------------------------------------------------- admin

    /// @notice Set the terms for inferences paid from now on (params role; every value bounded;
    /// the staking cooldown must cover challenge window + resolve period).
    function setParams(Terms calldata terms_) external onlyRole(PARAMS_ROLE) {
        _checkTerms(terms_);
        uint64 cooldown = staking.cooldown();
        if (cooldown < terms_.challengeWindow + terms_.resolvePeriod) {
            revert CooldownTooShort(cooldown, terms_.challengeWindow + terms_.resolvePeriod);
        }
        terms = terms_;
        emit ParamsChanged(terms_);
    }

    /// @notice Set the protocol treasury (params role). Affects splits made afterwards.
    function setTreasury(address treasury_) external onlyRole(PARAMS_ROLE) {
        if (treasury_ == address(0)) revert ZeroAddress();
        treasury = treasury_;
        emit TreasuryChanged(treasury_);
    }

    /// @notice Emergency stop of payments, records and challenges (pauser); the ledger clock
    /// stops with it.
    function pause() external onlyRole(PAUSER_ROLE) {
        pausedSince = uint64(block.timestamp);
        _pause();
    }

    /// @notice Resume (pauser).
    function unpause() external onlyRole(PAUSER_ROLE) {
        pausedTotal += uint64(block.timestamp) - pausedSince;
        pausedSince = 0;
        _unpause();
    }

    // ---------------------------------------------------------------- internals

    function _checkTerms(Terms memory t) private pure {
        if (t.protocolBps > MAX_PROTOCOL_BPS) revert OutOfBounds("protocolBps", t.protocolBps);
        if (t.modelOwnerBps > MAX_OWNER_BPS) revert OutOfBounds("modelOwnerBps", t.modelOwnerBps);
        if (t.nodeBps > MAX_NODE_BPS) revert OutOfBounds("nodeBps", t.nodeBps);
        uint256 taken = uint256(t.protocolBps) + t.modelOwnerBps + t.nodeBps;
        if (taken > BPS - MIN_CONTRIBUTORS_BPS) revert OutOfBounds("split", taken);
        if (t.challengeWindow < MIN_WINDOW || t.challengeWindow > MAX_WINDOW) {
            revert OutOfBounds("challengeWindow", t.challengeWindow);
        }
        if (t.recordTimeout < MIN_WINDOW || t.recordTimeout > MAX_WINDOW) {
            revert OutOfBounds("recordTimeout", t.recordTimeout);
        }
        if (t.resolvePeriod < MIN_WINDOW || t.resolvePeriod > MAX_WINDOW) {
            revert OutOfBounds("resolvePeriod", t.resolvePeriod);
        }
        if (t.challengeBond == 0 || t.challengeBond > MAX_BOND) revert OutOfBounds("challengeBond", t.challengeBond);
        if (t.slashAmount > MAX_SLASH) revert OutOfBounds("slashAmount", t.slashAmount);
    }

    function _isPayee(IPayees payees, IModels.SnapshotRef[] memory snaps, address who) private view returns (bool) {
        for (uint256 j = 0; j < snaps.length; ++j) {
            if (payees.isPayee(snaps[j].datanetId, snaps[j].version, who)) return true;
        }
        return false;
    }

    function _require(uint256 inferenceId, Status expected) private view returns (Inference storage inf) {
        inf = _inferences[inferenceId];
        if (inf.status == Status.None) revert UnknownInference(inferenceId);
        if (inf.status != expected) revert WrongStatus(inferenceId, inf.status);
    }

    function _splitAmounts(Terms memory t, uint256 fee, uint16[] memory bps)
        private
        pure
        returns (uint256 toTreasury, uint256 toOwner, uint256 toNode, uint256[] memory toContributors)
    {
        toOwner = fee * t.modelOwnerBps / BPS;
        toNode = fee * t.nodeBps / BPS;
        uint256 base = fee * t.protocolBps / BPS;
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

    function _split(uint256 inferenceId, Inference storage inf) private {
        inf.status = Status.Finalized;
        uint256 fee = inf.fee;
        totalEscrowed -= fee;
        (uint256 toTreasury, uint256 toOwner, uint256 toNode, uint256[] memory toContributors) =
            _splitAmounts(inf.terms, fee, _weights[inferenceId]);
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
