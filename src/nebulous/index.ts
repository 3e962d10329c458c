// Nebulous, the file-location service: storage objects named by keys, instances (files) on
// volumes, replication, locks, pattern search, and the housekeeping that keeps the database
// and the disks in agreement.
export { NebError, NEB_STATUS, nebStatusOf } from './errors.ts';
export { NEBULOUS_MIGRATIONS } from './migrations.ts';
export {
  MAX_KEY_BYTES, compileGlob, compileRegex, instanceRelPath, parseNebKey, parseVolumeRequest, prefixUpperBound,
} from './key.ts';
export type { KeyPattern, NebKey } from './key.ts';
export { MAX_FIND_MANY, Nebulous } from './service.ts';
export type { Caller, FoundPaths, NebulousOptions, PlaceOptions } from './service.ts';
export { startNebulousServer } from './server.ts';
export type { NebulousServer, NebulousServerOptions, NebulousStats } from './server.ts';
export { NebulousClient } from './client.ts';
export type { NebulousClientOptions } from './client.ts';
export { fsck, rebalance, repair } from './housekeeping.ts';
export type { FsckOptions, RebalanceOptions } from './housekeeping.ts';
export type { LockMode, SweptLock } from './locks.ts';
export type { VolumeChange, VolumeSpec } from './volumes.ts';
export { VOLUME_STATES } from './types.ts';
export type {
  FsckProblem, FsckReport, HousekeepingReport, InstanceInfo, LockInfo, ObjectStat, PlacedInstance, VolumeInfo, VolumeState,
} from './types.ts';
