// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @title DatanetRegistry
/// @notice On-chain home of Datanets: who owns and curates each one, every published snapshot
/// (Merkle root over its accepted records) and which contributor vouched for which records.
/// @dev Design decisions (see also the studio's report):
/// - A snapshot's Merkle leaf is
///   `keccak256(bytes.concat(keccak256(abi.encode(contentHash, contributor, licenseHash))))`
///   with sorted-pair inner nodes, so `MerkleProof.verify` checks any record (`verifyRecord`).
/// - Contributions are bound by the contributor's EIP-712 signature over one *batch* of their
///   records: (datanetId, version, contributor, licenseHash, keccak256 of the packed content
///   hashes, count, deadline). The curator submits many contributors' batches in one
///   transaction, so ecrecovers scale with contributors, not records, and a record costs only its
///   32 calldata bytes plus its share of one event. Records are not stored one by one: the
///   `ContributionsBound` event carries every content hash (an indexer rebuilds the full history
///   from events alone) and storage keeps per-contributor counts plus a replay guard per batch.
///   Inclusion of each bound record in the snapshot root is not re-proved on chain (that would
///   cost ~10 hashes and 320 calldata bytes per record); anyone can check it with `verifyRecord`,
///   and the bound count of a snapshot can never exceed its record count.
/// - A configurable publishing fee (exact `msg.value`) is charged per published snapshot and
///   accrues to the treasury, which is paid by `withdrawFees` (pull, non-reentrant).
contract DatanetRegistry is AccessControl, Pausable, ReentrancyGuard, EIP712 {
    /// @notice May pause and unpause the registry in an emergency.
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");
    /// @notice May change the publishing fee and the treasury.
    bytes32 public constant FEE_MANAGER_ROLE = keccak256("FEE_MANAGER_ROLE");

    bytes32 public constant CONTRIBUTION_TYPEHASH = keccak256(
        "ContributionBatch(uint256 datanetId,uint64 version,address contributor,bytes32 licenseHash,bytes32 contentsHash,uint256 count,uint256 deadline)"
    );

    struct Datanet {
        address owner;
        bytes32 metadataHash;
        string metadataURI;
        uint64 latestVersion;
        uint64 createdAt;
    }

    struct Snapshot {
        bytes32 root;
        bytes32 manifestHash;
        uint64 recordCount;
        uint64 boundCount;
        uint64 publishedAt;
    }

    /// @notice One contributor's signed claim over a list of their records in one snapshot.
    struct ContributionBatch {
        address contributor;
        bytes32 licenseHash;
        uint256 deadline;
        bytes signature;
        bytes32[] contentHashes;
    }

    error UnknownDatanet(uint256 datanetId);
    error NotDatanetOwner(uint256 datanetId, address caller);
    error NotCurator(uint256 datanetId, address caller);
    error ZeroAddress();
    error WrongFee(uint256 expected, uint256 sent);
    error VersionNotIncreasing(uint64 latest, uint64 given);
    error UnknownSnapshot(uint256 datanetId, uint64 version);
    error EmptySnapshot();
    error ZeroRoot();
    error EmptyBatch();
    error SignatureExpired(uint256 deadline);
    error BadContributorSignature(address contributor);
    error BatchAlreadyBound(bytes32 digest);
    error TooManyContributions(uint64 recordCount, uint256 bound);
    error NothingToWithdraw();
    error TransferFailed();

    event DatanetCreated(uint256 indexed datanetId, address indexed owner, bytes32 metadataHash, string metadataURI);
    event DatanetMetadataUpdated(uint256 indexed datanetId, bytes32 metadataHash, string metadataURI);
    event DatanetOwnershipTransferred(uint256 indexed datanetId, address indexed previousOwner, address indexed newOwner);
    event CuratorSet(uint256 indexed datanetId, address indexed curator, bool enabled);
    event SnapshotPublished(
        uint256 indexed datanetId,
        uint64 indexed version,
        bytes32 root,
        uint64 recordCount,
        bytes32 manifestHash,
        address publisher,
        uint256 feePaid
    );
    event ContributionsBound(
        uint256 indexed datanetId,
        uint64 indexed version,
        address indexed contributor,
        bytes32 licenseHash,
        bytes32 contentsHash,
        bytes32[] contentHashes
    );
    event PublishFeeChanged(uint256 fee);
    event TreasuryChanged(address treasury);
    event FeesWithdrawn(address indexed treasury, uint256 amount);

    uint256 public datanetCount;
    uint256 public publishFee;
    address public treasury;
    uint256 public feesAccrued;

    mapping(uint256 => Datanet) private _datanets;
    mapping(uint256 => mapping(address => bool)) private _curators;
    mapping(uint256 => mapping(uint64 => Snapshot)) private _snapshots;
    /// @notice Records bound per (datanet, version, contributor).
    mapping(uint256 => mapping(uint64 => mapping(address => uint256))) public contributionCount;
    /// @notice EIP-712 digests of batches already bound (replay guard).
    mapping(bytes32 => bool) public batchBound;

    constructor(address admin, address treasury_, uint256 publishFee_) EIP712("OpenLedger DatanetRegistry", "1") {
        if (admin == address(0) || treasury_ == address(0)) revert ZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
        _grantRole(FEE_MANAGER_ROLE, admin);
        treasury = treasury_;
        publishFee = publishFee_;
    }

    // ---------------------------------------------------------------- Datanets

    /// @notice Create a Datanet owned by the caller.
    /// @param metadataHash Hash of the Datanet's metadata document (name, description, license…).
    /// @param metadataURI Where the metadata can be fetched (may be empty).
    /// @return datanetId The new Datanet's id (starting at 1).
    function createDatanet(bytes32 metadataHash, string calldata metadataURI)
        external
        whenNotPaused
        returns (uint256 datanetId)
    {
        datanetId = ++datanetCount;
        Datanet storage d = _datanets[datanetId];
        d.owner = msg.sender;
        d.metadataHash = metadataHash;
        d.metadataURI = metadataURI;
        d.createdAt = uint64(block.timestamp);
        emit DatanetCreated(datanetId, msg.sender, metadataHash, metadataURI);
    }

    /// @notice Update a Datanet's metadata (owner only).
    function updateMetadata(uint256 datanetId, bytes32 metadataHash, string calldata metadataURI)
        external
        whenNotPaused
    {
        _requireOwner(datanetId);
        Datanet storage d = _datanets[datanetId];
        d.metadataHash = metadataHash;
        d.metadataURI = metadataURI;
        emit DatanetMetadataUpdated(datanetId, metadataHash, metadataURI);
    }

    /// @notice Hand a Datanet to a new owner (owner only).
    function transferDatanetOwnership(uint256 datanetId, address newOwner) external whenNotPaused {
        _requireOwner(datanetId);
        if (newOwner == address(0)) revert ZeroAddress();
        emit DatanetOwnershipTransferred(datanetId, _datanets[datanetId].owner, newOwner);
        _datanets[datanetId].owner = newOwner;
    }

    /// @notice Add or remove a curator, who may publish snapshots and bind contributions (owner only).
    function setCurator(uint256 datanetId, address curator, bool enabled) external whenNotPaused {
        _requireOwner(datanetId);
        if (curator == address(0)) revert ZeroAddress();
        _curators[datanetId][curator] = enabled;
        emit CuratorSet(datanetId, curator, enabled);
    }

    /// @notice Whether `account` is the owner or a curator of the Datanet.
    function isCurator(uint256 datanetId, address account) public view returns (bool) {
        return _datanets[datanetId].owner == account || _curators[datanetId][account];
    }

    /// @notice A Datanet's owner, metadata and latest published version.
    function getDatanet(uint256 datanetId) external view returns (Datanet memory) {
        _requireExists(datanetId);
        return _datanets[datanetId];
    }

    // ---------------------------------------------------------------- snapshots

    /// @notice Publish a snapshot and, in the same transaction, bind contributor batches.
    /// @dev Caller must be owner or curator; `msg.value` must equal `publishFee`. Versions must
    /// increase (gaps are allowed: local versions that were never published are skipped).
    /// @param datanetId The Datanet.
    /// @param version The snapshot version (greater than the latest published one).
    /// @param root Merkle root over the snapshot's records (leaf format in the contract notes).
    /// @param recordCount Number of records (leaves) in the snapshot.
    /// @param manifestHash Hash of the snapshot manifest (record list, metadata) kept off chain.
    /// @param batches Contributor batches to bind right away (may be empty).
    function publishSnapshot(
        uint256 datanetId,
        uint64 version,
        bytes32 root,
        uint64 recordCount,
        bytes32 manifestHash,
        ContributionBatch[] calldata batches
    ) external payable whenNotPaused nonReentrant {
        _requireCurator(datanetId);
        if (msg.value != publishFee) revert WrongFee(publishFee, msg.value);
        if (root == bytes32(0)) revert ZeroRoot();
        if (recordCount == 0) revert EmptySnapshot();
        Datanet storage d = _datanets[datanetId];
        if (version <= d.latestVersion) revert VersionNotIncreasing(d.latestVersion, version);
        d.latestVersion = version;
        _snapshots[datanetId][version] = Snapshot({
            root: root,
            manifestHash: manifestHash,
            recordCount: recordCount,
            boundCount: 0,
            publishedAt: uint64(block.timestamp)
        });
        feesAccrued += msg.value;
        emit SnapshotPublished(datanetId, version, root, recordCount, manifestHash, msg.sender, msg.value);
        if (batches.length > 0) _bind(datanetId, version, batches);
    }

    /// @notice Bind more contributor batches to an already published snapshot (owner or curator).
    function bindContributions(uint256 datanetId, uint64 version, ContributionBatch[] calldata batches)
        external
        whenNotPaused
    {
        _requireCurator(datanetId);
        if (_snapshots[datanetId][version].publishedAt == 0) revert UnknownSnapshot(datanetId, version);
        _bind(datanetId, version, batches);
    }

    /// @notice A published snapshot.
    function getSnapshot(uint256 datanetId, uint64 version) external view returns (Snapshot memory s) {
        s = _snapshots[datanetId][version];
        if (s.publishedAt == 0) revert UnknownSnapshot(datanetId, version);
    }

    /// @notice Check that a record is part of a published snapshot.
    /// @param contentHash sha256 of the record's canonical content.
    /// @param contributor The record's contributor.
    /// @param licenseHash keccak256 of the record's SPDX license id (UTF-8).
    /// @param proof Sibling hashes from leaf to root (sorted-pair hashing).
    function verifyRecord(
        uint256 datanetId,
        uint64 version,
        bytes32 contentHash,
        address contributor,
        bytes32 licenseHash,
        bytes32[] calldata proof
    ) external view returns (bool) {
        bytes32 root = _snapshots[datanetId][version].root;
        if (root == bytes32(0)) return false;
        return MerkleProof.verifyCalldata(proof, root, leafHash(contentHash, contributor, licenseHash));
    }

    /// @notice The snapshot Merkle leaf of a record.
    function leafHash(bytes32 contentHash, address contributor, bytes32 licenseHash) public pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(contentHash, contributor, licenseHash))));
    }

    /// @notice The EIP-712 digest a contributor signs for one batch.
    function contributionDigest(
        uint256 datanetId,
        uint64 version,
        address contributor,
        bytes32 licenseHash,
        bytes32 contentsHash,
        uint256 count,
        uint256 deadline
    ) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(CONTRIBUTION_TYPEHASH, datanetId, version, contributor, licenseHash, contentsHash, count, deadline)
            )
        );
    }

    function _bind(uint256 datanetId, uint64 version, ContributionBatch[] calldata batches) private {
        Snapshot storage s = _snapshots[datanetId][version];
        uint256 bound = s.boundCount;
        for (uint256 i = 0; i < batches.length; ++i) {
            ContributionBatch calldata b = batches[i];
            uint256 n = b.contentHashes.length;
            if (n == 0) revert EmptyBatch();
            if (block.timestamp > b.deadline) revert SignatureExpired(b.deadline);
            // One hash over the packed content hashes: the contributor signs this, not each record.
            bytes32 contentsHash = keccak256(abi.encodePacked(b.contentHashes));
            bytes32 digest =
                contributionDigest(datanetId, version, b.contributor, b.licenseHash, contentsHash, n, b.deadline);
            (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(digest, b.signature);
            if (err != ECDSA.RecoverError.NoError || signer != b.contributor || signer == address(0)) {
                revert BadContributorSignature(b.contributor);
            }
            if (batchBound[digest]) revert BatchAlreadyBound(digest);
            batchBound[digest] = true;
            contributionCount[datanetId][version][b.contributor] += n;
            bound += n;
            emit ContributionsBound(datanetId, version, b.contributor, b.licenseHash, contentsHash, b.contentHashes);
        }
        if (bound > s.recordCount) revert TooManyContributions(s.recordCount, bound);
        s.boundCount = uint64(bound);
    }

    // ---------------------------------------------------------------- fees and admin

    /// @notice Pay the accrued publishing fees to the treasury (anyone may trigger it).
    function withdrawFees() external nonReentrant {
        uint256 amount = feesAccrued;
        if (amount == 0) revert NothingToWithdraw();
        feesAccrued = 0;
        (bool ok,) = treasury.call{value: amount}("");
        if (!ok) revert TransferFailed();
        emit FeesWithdrawn(treasury, amount);
    }

    /// @notice Set the publishing fee in wei (fee manager).
    function setPublishFee(uint256 fee) external onlyRole(FEE_MANAGER_ROLE) {
        publishFee = fee;
        emit PublishFeeChanged(fee);
    }

    /// @notice Set the treasury that receives publishing fees (fee manager).
    function setTreasury(address treasury_) external onlyRole(FEE_MANAGER_ROLE) {
        if (treasury_ == address(0)) revert ZeroAddress();
        treasury = treasury_;
        emit TreasuryChanged(treasury_);
    }

    /// @notice Stop every state change except fee withdrawal (pauser).
    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    /// @notice Resume normal operation (pauser).
    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    function _requireExists(uint256 datanetId) private view {
        if (_datanets[datanetId].owner == address(0)) revert UnknownDatanet(datanetId);
    }

    function _requireOwner(uint256 datanetId) private view {
        _requireExists(datanetId);
        if (_datanets[datanetId].owner != msg.sender) revert NotDatanetOwner(datanetId, msg.sender);
    }

    function _requireCurator(uint256 datanetId) private view {
        _requireExists(datanetId);
        if (!isCurator(datanetId, msg.sender)) revert NotCurator(datanetId, msg.sender);
    }
}
