/** Checkpoint file formats: safetensors, torch .pth (restricted, no code execution), key maps. */
export { CheckpointFormatError, UnsafePickleError } from './errors.ts';
export { writeFileAtomic, writeFileAtomicAsync } from './atomic.ts';
export {
  type NamedTensor, type Dtype, DTYPE_ITEMSIZE, MAX_HEADER_BYTES, isDtype, decodeToFloat32,
  type SerializeOptions, readSafetensors, loadSafetensors, serializeSafetensors, saveSafetensors,
} from './safetensors.ts';
export { type ZipEntry, type ZipArchive, openZip, crc32 } from './zip.ts';
export { type PyValue, type UnpickleOptions, PyExtension, PyGlobal, isTuple, isList, unpickle, unpickleFrom } from './pickle.ts';
export {
  ArrayValue, TorchStorage, TorchTensor, TorchStorageType, type PthExtra,
  torchGlobals, readPth, readLegacyPth, isLegacyTorch, loadPth, flattenCheckpoint, loadStateDict,
} from './pth.ts';
export { NumpyArray, numpyGlobals, readNumpyPickle } from './numpy-pickle.ts';
export { type CheckpointKind, sniffCheckpoint, readCheckpoint, loadCheckpointFile } from './checkpoint.ts';
export {
  type CheckpointSource, type SourceDetection, type RenameRule, type SourceRule, type StateDictMatch,
  SOURCE_RULES, detectSource, mapKeys, matchStateDict, formatLoadReport,
} from './keymaps.ts';
export { type TorchSaveValue, type PthWriteOptions, serializePth, serializeLegacyPth, savePth } from './pth-write.ts';
export { type Layout, type LayoutResult, LAYOUTS, isLayout, toLayout } from './layouts.ts';
export {
  type CheckpointOrigin, type ReadCheckpoint, type ModelCheckpoint, type LoadModelCheckpointOptions,
  readAnyCheckpoint, loadModelCheckpoint,
} from './read-checkpoint.ts';
export { makeBatchDynamic } from './onnx-batch.ts';
export { weightsToFp16 } from './onnx-fp16.ts';
