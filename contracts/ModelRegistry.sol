// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControlDefaultAdminRules} from
    "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

interface IDatanetSnapshots {
    struct Snapshot {
        bytes32 root;
        bytes32 manifestHash;
        uint64 recordCount;
        uint64 boundCount;
        uint64 publishedAt;
    }

    function getSnapshot(uint256 datanetId, uint64 version) external view returns (Snapshot memory);
}

/// @title ModelRegistry
/// @notice Registers fine-tuned model versions: what they were built from (base model, adapter,
/// training config, the Datanet snapshots they were trained on) and their price per inference.
/// @dev Every registration is one immutable model version with its own id; the owner may change
/// the price and retire it (a retired version cannot be paid for, its record stays). Snapshots
/// must exist in the DatanetRegistry at registration time (it reverts on an unknown snapshot).
/// While the registry is paused, `priceOf` reverts, so no new payment can be made for its models.
contract ModelRegistry is AccessControlDefaultAdminRules, Pausable {
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    struct SnapshotRef {
        uint256 datanetId;
        uint64 version;
    }

    struct Model {
        address owner;
        bytes32 baseModelHash;
        bytes32 adapterHash;
        bytes32 configHash;
        string metadataURI;
        uint256 pricePerInference;
        uint64 registeredAt;
        bool retired;
    }

    error UnknownModel(uint256 modelId);
    error NotModelOwner(uint256 modelId, address caller);
    error ModelRetired(uint256 modelId);
    error NoTrainingSnapshots();
    error ZeroHash();
    error ZeroAddress();

    event ModelRegistered(
        uint256 indexed modelId,
        address indexed owner,
        bytes32 baseModelHash,
        bytes32 adapterHash,
        bytes32 configHash,
        SnapshotRef[] snapshots,
        string metadataURI,
        uint256 pricePerInference
    );
    event ModelPriceChanged(uint256 indexed modelId, uint256 pricePerInference);
    event ModelVersionRetired(uint256 indexed modelId);

    IDatanetSnapshots public immutable datanets;
    uint256 public modelCount;
    mapping(uint256 => Model) private _models;
    mapping(uint256 => SnapshotRef[]) private _snapshots;

    /// @param admin Default admin (a TimelockController in production).
    /// @param pauser Emergency pauser (a guardian multisig in production).
    /// @param adminDelay Delay of a default-admin transfer.
    constructor(address admin, address pauser, uint48 adminDelay, address datanetRegistry)
        AccessControlDefaultAdminRules(adminDelay, admin)
    {
        if (admin == address(0) || pauser == address(0) || datanetRegistry == address(0)) revert ZeroAddress();
        _grantRole(PAUSER_ROLE, pauser);
        datanets = IDatanetSnapshots(datanetRegistry);
    }

    /// @notice Register a model version owned by the caller.
    /// @param baseModelHash Hash identifying the base model weights.
    /// @param adapterHash Hash of the fine-tuned adapter weights.
    /// @param configHash Hash of the training configuration.
    /// @param snapshots The published Datanet snapshots the model was trained on (at least one).
    /// @param metadataURI Where the model card lives.
    /// @param pricePerInference Minimum payment per inference, in wei of OPEN.
    /// @return modelId The new model version's id (starting at 1).
    function registerModel(
        bytes32 baseModelHash,
        bytes32 adapterHash,
        bytes32 configHash,
        SnapshotRef[] calldata snapshots,
        string calldata metadataURI,
        uint256 pricePerInference
    ) external whenNotPaused returns (uint256 modelId) {
        if (baseModelHash == bytes32(0) || adapterHash == bytes32(0)) revert ZeroHash();
        if (snapshots.length == 0) revert NoTrainingSnapshots();
        modelId = ++modelCount;
        for (uint256 i = 0; i < snapshots.length; ++i) {
            datanets.getSnapshot(snapshots[i].datanetId, snapshots[i].version); // reverts if unknown
            _snapshots[modelId].push(snapshots[i]);
        }
        _models[modelId] = Model({
            owner: msg.sender,
            baseModelHash: baseModelHash,
            adapterHash: adapterHash,
            configHash: configHash,
            metadataURI: metadataURI,
            pricePerInference: pricePerInference,
            registeredAt: uint64(block.timestamp),
            retired: false
        });
        emit ModelRegistered(
            modelId, msg.sender, baseModelHash, adapterHash, configHash, snapshots, metadataURI, pricePerInference
        );
    }

    /// @notice Change the price per inference (model owner).
    function setPrice(uint256 modelId, uint256 pricePerInference) external whenNotPaused {
        Model storage m = _requireOwner(modelId);
        if (m.retired) revert ModelRetired(modelId);
        m.pricePerInference = pricePerInference;
        emit ModelPriceChanged(modelId, pricePerInference);
    }

    /// @notice Retire a model version so it can no longer be paid for (model owner).
    function retire(uint256 modelId) external whenNotPaused {
        Model storage m = _requireOwner(modelId);
        if (m.retired) revert ModelRetired(modelId);
        m.retired = true;
        emit ModelVersionRetired(modelId);
    }

    /// @notice A model version.
    function getModel(uint256 modelId) external view returns (Model memory) {
        if (_models[modelId].owner == address(0)) revert UnknownModel(modelId);
        return _models[modelId];
    }

    /// @notice The snapshots a model version was trained on.
    function getTrainingSnapshots(uint256 modelId) external view returns (SnapshotRef[] memory) {
        if (_models[modelId].owner == address(0)) revert UnknownModel(modelId);
        return _snapshots[modelId];
    }

    /// @notice Owner and price of an active model; reverts for unknown or retired ones, and for
    /// every model while the registry is paused (no new payments).
    function priceOf(uint256 modelId) external view whenNotPaused returns (address owner, uint256 price) {
        Model storage m = _models[modelId];
        if (m.owner == address(0)) revert UnknownModel(modelId);
        if (m.retired) revert ModelRetired(modelId);
        return (m.owner, m.pricePerInference);
    }

    /// @notice Stop registrations, updates and new payments for every model (pauser).
    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    /// @notice Resume (pauser).
    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    function _requireOwner(uint256 modelId) private view returns (Model storage m) {
        m = _models[modelId];
        if (m.owner == address(0)) revert UnknownModel(modelId);
        if (m.owner != msg.sender) revert NotModelOwner(modelId, msg.sender);
    }
}
