// The shapes the Nebulous server answers with and the client returns: plain JSON objects.

/** A volume's state: `available` takes new files; `read-only` serves reads only; `down` serves nothing. */
export type VolumeState = 'available' | 'read-only' | 'down';

/** The volume states, in the order `volume ls` explains them. */
export const VOLUME_STATES: readonly VolumeState[] = Object.freeze(['available', 'read-only', 'down']);

/** A storage volume: a directory on a host that holds instances under `nebulous/`. */
export interface VolumeInfo {
  /** `HOST.VOL`, the name keys and commands use (e.g. `ipp004.0`). */
  readonly name: string;
  readonly host: string;
  /** The mount path on the hosts. */
  readonly path: string;
  readonly state: VolumeState;
  /** Bytes; null when unknown. */
  readonly capacity: number | null;
  readonly free: number | null;
  /** True when capacity and free come from the file system; false when set by hand. */
  readonly measured: boolean;
  /** Instances recorded on the volume (in `volume ls`). */
  readonly instances?: number;
}

/** One copy of a storage object. */
export interface InstanceInfo {
  readonly id: number;
  readonly volume: string;
  readonly host: string;
  /** The file's absolute path. */
  readonly path: string;
  readonly volumeState: VolumeState;
  /** Placed on a volume the client named, so rebalance leaves it there. */
  readonly pinned: boolean;
  readonly createdAt: string;
  /** The file's size on disk now; null when the file is missing or its volume is down. */
  readonly fileSize?: number | null;
}

/** A lock on a storage object. */
export interface LockInfo {
  readonly holder: string;
  readonly mode: 'read' | 'write';
  readonly acquiredAt: string;
}

/** What `stat` reports about a storage object. */
export interface ObjectStat {
  readonly key: string;
  readonly id: number;
  readonly state: 'live' | 'deleted';
  /** Bytes and SHA-256 (hex) recorded when the content was last known final (replicate, copy, import); null before. */
  readonly size: number | null;
  readonly checksum: string | null;
  /** Copies on distinct hosts the object should keep (repair adds missing ones). */
  readonly copies: number;
  readonly readLocks: number;
  readonly writeLock: { readonly holder: string; readonly time: string } | null;
  readonly locks: readonly LockInfo[];
  readonly createdAt: string;
  readonly modifiedAt: string;
  readonly deletedAt: string | null;
  readonly instances: readonly InstanceInfo[];
  readonly attributes: Readonly<Record<string, string>>;
}

/** Where a new instance was placed. */
export interface PlacedInstance {
  readonly key: string;
  /** The file to write (create) or the copy made (replicate, copy, import). */
  readonly path: string;
  readonly volume: string;
  readonly host: string;
  readonly instance: number;
}

/** One inconsistency fsck found, and whether it was fixed. */
export interface FsckProblem {
  readonly kind:
    | 'missing' | 'size' | 'checksum' | 'lost' | 'orphan' | 'temp' | 'foreign' | 'under-replicated' | 'stale-lock';
  readonly key?: string;
  readonly path?: string;
  readonly volume?: string;
  readonly detail: string;
  readonly fixed: boolean;
}

/** The result of a consistency sweep. */
export interface FsckReport {
  readonly instancesChecked: number;
  readonly filesScanned: number;
  readonly volumesScanned: readonly string[];
  /** Volumes that are down and so were not looked at. */
  readonly volumesSkipped: readonly string[];
  readonly problems: readonly FsckProblem[];
  /** Copies added by the repair that `--fix` runs after removing bad instances. */
  readonly replicated: number;
  readonly clean: boolean;
}

/** The result of `repair` (missing copies added) or `rebalance` (instances moved). */
export interface HousekeepingReport {
  readonly examined: number;
  readonly done: readonly { readonly key: string; readonly from?: string; readonly to: string; readonly path: string }[];
  readonly failed: readonly { readonly key: string; readonly reason: string }[];
}
