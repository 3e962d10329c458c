// Host configurations, as the client adds them and the scheduler stores them (so a restarted
// server comes back with its hosts), and the driver each one makes.
import { join } from 'node:path';
import { PantasksError } from './errors.ts';
import type { HostDriver } from './host-driver.ts';
import { PclientHost, sshArgv } from './pclient-host.ts';
import { SlurmHost } from './slurm-host.ts';

/** A host reached by ssh, running pclient there. */
export interface SshHostConfig {
  readonly kind: 'ssh';
  readonly name: string;
  readonly slots?: number;
  /** The address to connect to (default: the name). */
  readonly host?: string;
  readonly port?: number;
  readonly user?: string;
  readonly key?: string;
  /** The command that runs pclient on the host (default `ipp pclient`). */
  readonly pclient?: string;
  /** Extra ssh `-o` options. */
  readonly options?: readonly string[];
}

/** pclient started directly on this machine (a pool of local slots that goes through pcontrol). */
export interface PclientHostConfig {
  readonly kind: 'pclient';
  readonly name: string;
  readonly slots?: number;
  /** The command that starts pclient (default: this node running `ipp pclient`). */
  readonly argv?: readonly string[];
}

/** A Slurm partition. */
export interface SlurmHostConfig {
  readonly kind: 'slurm';
  readonly name: string;
  /** Jobs submitted at once (default 100). */
  readonly slots?: number;
  readonly partition?: string;
  /** Where batch scripts, outputs and statuses go (default: a directory beside the scheduler's database). */
  readonly spoolDir?: string;
  readonly sbatchArgs?: readonly string[];
  /** ms between polls (default 1000). */
  readonly pollInterval?: number;
}

/** A host as added to pcontrol. */
export type HostConfig = SshHostConfig | PclientHostConfig | SlurmHostConfig;

/** What the drivers need from the scheduler. */
export interface HostContext {
  readonly instance: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The default spool directory for Slurm hosts. */
  readonly spoolRoot: string;
  /** The command that starts pclient on this machine. */
  readonly localPclient: readonly string[];
  /** ms for a pclient's hello, and between pings. */
  readonly connectTimeout?: number;
  readonly pingInterval?: number;
}

function bad(message: string): PantasksError {
  return new PantasksError('pantasks_bad_host', message);
}

function optionalString(config: Record<string, unknown>, key: string): void {
  if (config[key] !== undefined && (typeof config[key] !== 'string' || config[key] === '')) throw bad(`host ${config.name}: ${key} must be a non-empty string`);
}

function optionalStrings(config: Record<string, unknown>, key: string): void {
  const v = config[key];
  if (v !== undefined && (!Array.isArray(v) || !v.every((s) => typeof s === 'string'))) throw bad(`host ${config.name}: ${key} must be a list of strings`);
}

/** Checks a host configuration (from a client or the store). */
export function checkHostConfig(value: unknown): HostConfig {
  if (value === null || typeof value !== 'object') throw bad('a host configuration must be an object');
  const c = value as Record<string, unknown>;
  if (typeof c.name !== 'string') throw bad('a host needs a name');
  if (c.slots !== undefined && (!Number.isInteger(c.slots) || (c.slots as number) < 1 || (c.slots as number) > 10_000)) throw bad(`host ${c.name}: slots must be a whole number from 1 to 10000`);
  const known: Record<string, string[]> = {
    ssh: ['host', 'port', 'user', 'key', 'pclient', 'options'],
    pclient: ['argv'],
    slurm: ['partition', 'spoolDir', 'sbatchArgs', 'pollInterval'],
  };
  const kind = c.kind as string;
  if (!(kind in known)) throw bad(`host ${c.name}: kind must be ssh, pclient or slurm, not ${JSON.stringify(c.kind)}`);
  for (const key of Object.keys(c)) {
    if (!['kind', 'name', 'slots', ...known[kind]!].includes(key)) throw bad(`host ${c.name}: ${key} does not apply to a ${kind} host; it takes ${known[kind]!.join(', ')}`);
  }
  if (kind === 'ssh') {
    for (const k of ['host', 'user', 'key', 'pclient']) optionalString(c, k);
    optionalStrings(c, 'options');
    if (c.port !== undefined && (!Number.isInteger(c.port) || (c.port as number) < 1 || (c.port as number) > 65535)) throw bad(`host ${c.name}: port must be 1-65535`);
  } else if (kind === 'pclient') {
    optionalStrings(c, 'argv');
  } else {
    optionalString(c, 'partition');
    optionalString(c, 'spoolDir');
    optionalStrings(c, 'sbatchArgs');
    if (c.pollInterval !== undefined && (!Number.isInteger(c.pollInterval) || (c.pollInterval as number) < 50)) throw bad(`host ${c.name}: pollInterval must be a whole number of ms, at least 50`);
  }
  return Object.freeze({ ...c }) as unknown as HostConfig;
}

/** The default slots of a host kind. */
export function defaultSlots(config: HostConfig): number {
  return config.slots ?? (config.kind === 'slurm' ? 100 : 1);
}

/** Makes the driver of a host. */
export function createHostDriver(config: HostConfig, ctx: HostContext): HostDriver {
  const timing = { connectTimeout: ctx.connectTimeout, pingInterval: ctx.pingInterval };
  switch (config.kind) {
    case 'ssh': {
      const target = { host: config.host ?? config.name, port: config.port, user: config.user, key: config.key, pclient: config.pclient, options: config.options };
      const where = `${target.user ? `${target.user}@` : ''}${target.host}${target.port ? `:${target.port}` : ''}`;
      return new PclientHost({ argv: sshArgv(target), description: `ssh ${where}`, env: ctx.env, ...timing });
    }
    case 'pclient':
      return new PclientHost({ argv: config.argv ?? ctx.localPclient, description: `pclient on this machine (${(config.argv ?? ctx.localPclient).join(' ')})`, env: ctx.env, ...timing });
    case 'slurm':
      return new SlurmHost({
        partition: config.partition, spoolDir: config.spoolDir ?? join(ctx.spoolRoot, config.name), jobPrefix: `pantasks-${ctx.instance}-`,
        pollInterval: config.pollInterval, sbatchArgs: config.sbatchArgs, env: ctx.env,
      });
  }
}
