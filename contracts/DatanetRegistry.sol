// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControlDefaultAdminRules} from
    "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";

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
///   Every batch carries a multiproof of its records against the snapshot root (`leafIndices`
///   ascending + the sibling hashes the tree walk needs, see `_verifyMulti`), so only records
///   that are really in the snapshot *with that contributor* bind; each record (leaf) counts once
///   (a bitmap, one bit per leaf), so a (contributor, content) pair bound again adds nothing, the
///   count can never exceed the snapshot's records, and a curator with a sock-puppet cannot fill
///   it before the real contributors bind (a puppet can only bind leaves naming the puppet).
/// - Ownership moves in two steps (transfer → accept) and the accepting owner starts with no
///   curators; snapshot versions advance by exactly one.
/// - A configurable publishing fee (exact `msg.value`) is charged per published snapshot and
///   accrues to the treasury, which is paid by `withdrawFees` (pull, non-reentrant).
contract DatanetRegistry is AccessControlDefaultAdminRules, Pausable, ReentrancyGuard, EIP712 {
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
        /// Snapshot leaf index of each content hash, strictly ascending (same order).
        uint256[] leafIndices;
        /// Sibling hashes for the multiproof, in the order `_verifyMulti` consumes them.
        bytes32[] proof;
    }

    /// @notice Upper bound of the publishing fee (a bounded parameter).
    uint256 public constant MAX_PUBLISH_FEE = 1_000 ether;

    error UnknownDatanet(uint256 datanetId);
    error NotDatanetOwner(uint256 datanetId, address caller);
    error NotCurator(uint256 datanetId, address caller);
    error ZeroAddress();
    error WrongFee(uint256 expected, uint256 sent);
    error VersionNotNext(uint64 latest, uint64 given);
    error NotPendingOwner(uint256 datanetId, address caller);
    error FeeTooHigh(uint256 fee, uint256 maximum);
    error BadLeafIndices(uint256 index);
    error NotInSnapshot(address contributor);
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
    event DatanetOwnershipTransferStarted(uint256 indexed datanetId, address indexed owner, address indexed pendingOwner);
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
    /// @notice Who may accept ownership of a Datanet (two-step transfer).
    mapping(uint256 => address) public pendingOwner;
    /// Curators per ownership epoch: a new owner starts with an empty set.
    mapping(uint256 => uint64) private _curatorEpoch;
    mapping(uint256 => mapping(uint64 => mapping(address => bool))) private _curators;
    /// Bound snapshot leaves, 256 per word, keyed by (datanet, version, leafIndex / 256).
    mapping(bytes32 => uint256) private _leafBits;
    mapping(uint256 => mapping(uint64 => Snapshot)) private _snapshots;
    /// @notice Records bound per (datanet, version, contributor).
    mapping(uint256 => mapping(uint64 => mapping(address => uint256))) public contributionCount;
    /// @notice EIP-712 digests of batches already bound (replay guard).
    mapping(bytes32 => bool) public batchBound;

    /// @param admin Default admin (a TimelockController in production); also the fee manager.
    /// @param pauser Emergency pauser (a guardian multisig in production).
    /// @param adminDelay Delay of a default-admin transfer (AccessControlDefaultAdminRules).
    constructor(address admin, address pauser, uint48 adminDelay, address treasury_, uint256 publishFee_)
        EIP712("OpenLedger DatanetRegistry", "1")
        AccessControlDefaultAdminRules(adminDelay, admin)
    {
        if (admin == address(0) || treasury_ == address(0) || pauser == address(0)) revert ZeroAddress();
        if (publishFee_ > MAX_PUBLISH_FEE) revert FeeTooHigh(publishFee_, MAX_PUBLISH_FEE);
        _grantRole(PAUSER_ROLE, pauser);
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

    /// @notice Offer a Datanet to a new owner (owner only); it moves when they accept.
    function transferDatanetOwnership(uint256 datanetId, address newOwner) external whenNotPaused {
        _requireOwner(datanetId);
        if (newOwner == address(0)) revert ZeroAddress();
        pendingOwner[datanetId] = newOwner;
        emit DatanetOwnershipTransferStarted(datanetId, msg.sender, newOwner);
    }

    /// @notice Accept a Datanet offered to the caller; the old owner's curators are dropped.
    function acceptDatanetOwnership(uint256 datanetId) external whenNotPaused {
        _requireExists(datanetId);
        if (pendingOwner[datanetId] != msg.sender) revert NotPendingOwner(datanetId, msg.sender);
        delete pendingOwner[datanetId];
        ++_curatorEpoch[datanetId];
        emit DatanetOwnershipTransferred(datanetId, _datanets[datanetId].owner, msg.sender);
        _datanets[datanetId].owner = msg.sender;
    }

    /// @notice Add or remove a curator, who may publish snapshots and bind contributions (owner only).
    function setCurator(uint256 datanetId, address curator, bool enabled) external whenNotPaused {
        _requireOwner(datanetId);
        if (curator == address(0)) revert ZeroAddress();
        _curators[datanetId][_curatorEpoch[datanetId]][curator] = enabled;
        emit CuratorSet(datanetId, curator, enabled);
    }

    /// @notice Whether `account` is the owner or a curator of the Datanet.
    function isCurator(uint256 datanetId, address account) public view returns (bool) {
        return _datanets[datanetId].owner == account || _curators[datanetId][_curatorEpoch[datanetId]][account];
    }

    /// @notice Whether `account` may be paid attribution for this snapshot: a contributor with at
    /// least one bound record in it, or the Datanet's owner (who receives the pooled tail).
    function isPayee(uint256 datanetId, uint64 version, address account) external view returns (bool) {
        return contributionCount[datanetId][version][account] > 0 || _datanets[datanetId].owner == account;
    }

    /// @notice A Datanet's owner, metadata and latest published version.
    function getDatanet(uint256 datanetId) external view returns (Datanet memory) {
        _requireExists(datanetId);
        return _datanets[datanetId];
    }

    // ---------------------------------------------------------------- snapshots

    /// @notice Publish a snapshot and, in the same transaction, bind contributor batches.
    /// @dev Caller must be owner or curator; `msg.value` must equal `publishFee`. Versions
    /// advance by one (so no one can jump to the last possible version).
    /// @param datanetId The Datanet.
    /// @param version The snapshot version: the latest published one + 1.
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
        if (version != d.latestVersion + 1) revert VersionNotNext(d.latestVersion, version);
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
            bound += _bindOne(datanetId, version, s.root, s.recordCount, batches[i]);
        }
        if (bound > s.recordCount) revert TooManyContributions(s.recordCount, bound);
        s.boundCount = uint64(bound);
    }

    /// @return fresh How many records (snapshot leaves) of the batch were not bound before.
    function _bindOne(uint256 datanetId, uint64 version, bytes32 root, uint64 width, ContributionBatch calldata b)
        private
        returns (uint256 fresh)
    {
        uint256 n = b.contentHashes.length;
        if (n == 0) revert EmptyBatch();
        if (b.leafIndices.length != n) revert BadLeafIndices(b.leafIndices.length);
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
        bytes32[] memory leaves = new bytes32[](n);
        for (uint256 j = 0; j < n; ++j) {
            leaves[j] = leafHash(b.contentHashes[j], b.contributor, b.licenseHash);
        }
        if (!_verifyMulti(root, width, b.leafIndices, leaves, b.proof)) revert NotInSnapshot(b.contributor);
        fresh = _markLeaves(datanetId, version, b.leafIndices);
        contributionCount[datanetId][version][b.contributor] += fresh;
        emit ContributionsBound(datanetId, version, b.contributor, b.licenseHash, contentsHash, b.contentHashes);
    }

    /// @dev One bit per snapshot leaf: a record binds once, however many batches name it.
    /// @return fresh How many of `indices` (ascending) were not bound before.
    function _markLeaves(uint256 datanetId, uint64 version, uint256[] calldata indices)
        private
        returns (uint256 fresh)
    {
        uint256 slot = type(uint256).max;
        uint256 bits;
        for (uint256 j = 0; j < indices.length; ++j) {
            uint256 idx = indices[j];
            if (idx >> 8 != slot) {
                if (slot != type(uint256).max) _leafBits[_bitKey(datanetId, version, slot)] = bits;
                slot = idx >> 8;
                bits = _leafBits[_bitKey(datanetId, version, slot)];
            }
            uint256 mask = uint256(1) << (idx & 255);
            if (bits & mask == 0) {
                bits |= mask;
                ++fresh;
            }
        }
        _leafBits[_bitKey(datanetId, version, slot)] = bits;
    }

    function _bitKey(uint256 datanetId, uint64 version, uint256 word) private pure returns (bytes32) {
        return keccak256(abi.encode(datanetId, version, word));
    }

    /// @dev Multiproof over the studio's tree (studio/core/merkle.py): levels pair neighbours
    /// with commutative keccak, an odd last node is carried up unchanged. Walks the known nodes
    /// level by level, left to right, taking a sibling from `proof` whenever it is not known.
    function _verifyMulti(
        bytes32 root,
        uint256 width,
        uint256[] calldata indices,
        bytes32[] memory nodes,
        bytes32[] calldata proof
    ) private pure returns (bool) {
        uint256 k = nodes.length;
        uint256[] memory pos = new uint256[](k);
        for (uint256 i = 0; i < k; ++i) {
            if (indices[i] >= width || (i > 0 && indices[i] <= indices[i - 1])) revert BadLeafIndices(i);
            pos[i] = indices[i];
        }
        uint256 p;
        while (width > 1) {
            uint256 w;
            uint256 r;
            while (r < k) {
                uint256 idx = pos[r];
                bytes32 h = nodes[r];
                bytes32 parent;
                if (idx & 1 == 0) {
                    if (idx + 1 < width) {
                        bytes32 sib;
                        if (r + 1 < k && pos[r + 1] == idx + 1) {
                            sib = nodes[r + 1];
                            r += 2;
                        } else {
                            if (p >= proof.length) return false;
                            sib = proof[p++];
                            r += 1;
                        }
                        parent = Hashes.commutativeKeccak256(h, sib);
                    } else {
                        parent = h; // odd last node: carried up
                        r += 1;
                    }
                } else {
                    if (p >= proof.length) return false;
                    parent = Hashes.commutativeKeccak256(proof[p++], h);
                    r += 1;
                }
                pos[w] = idx >> 1;
                nodes[w] = parent;
                ++w;
            }
            k = w;
            width = (width + 1) >> 1;
        }
        return p == proof.length && nodes[0] == root;
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
        if (fee > MAX_PUBLISH_FEE) revert FeeTooHigh(fee, MAX_PUBLISH_FEE);
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
