// The clients table: every running program registers a row, beats its heart in it, and reads
// the requests (pause, resume, stop) that the console or `ipp ... client` commands leave there.
// A program whose heartbeat stops is marked lost by the next program that looks, and what it
// held (a stripe, a scratch database) goes back to the pool; its item claims expire by lease.
import type { Queryable, Row } from '../db/index.ts';
import { IppToPspsError } from './errors.ts';

/** What a program is doing, as the clients table says. */
export type ClientState = 'running' | 'paused' | 'stopped' | 'exited' | 'lost';

/** What someone asked a program to do. */
export type ClientRequest = 'pause' | 'resume' | 'stop';

/** One row of the clients table. */
export interface ClientRecord {
  readonly client_id: number;
  readonly program: string;
  readonly config: string;
  readonly host: string;
  readonly pid: number;
  readonly started_at: string;
  readonly heartbeat_at: string;
  readonly state: ClientState;
  readonly request: ClientRequest | null;
  readonly log_path: string | null;
  readonly current_item: number | null;
  readonly ended_at: string | null;
  readonly detail: string | null;
}

/** Who is registering. */
export interface ClientIdentity {
  readonly program: string;
  readonly config: string;
  readonly host: string;
  readonly pid: number;
  readonly logPath?: string;
}

/** Adds a client row in state `running` and returns it. */
export async function registerClient(q: Queryable, who: ClientIdentity, now = new Date()): Promise<ClientRecord> {
  const at = now.toISOString();
  const row = await q.get(
    `INSERT INTO client (program, config, host, pid, started_at, heartbeat_at, state, log_path)
     VALUES (?, ?, ?, ?, ?, ?, 'running', ?) RETURNING *`,
    [who.program, who.config, who.host, who.pid, at, at, who.logPath ?? null],
  );
  return toClient(row!);
}

/**
 * Beats the heart of a client: records the time, applies a pending request (pause → paused,
 * resume → running, stop → stopped) and extends the lease of every item it holds by
 * `leaseMs`. Returns the client's state after that; `lost` is turned back into running
 * (the program is plainly alive), though what it held may have gone to others meanwhile.
 */
export async function heartbeatClient(q: Queryable, clientId: number, options: { leaseMs: number; now?: Date }): Promise<ClientRecord> {
  const now = options.now ?? new Date();
  const at = now.toISOString();
  const row = await q.get(
    `UPDATE client SET heartbeat_at = ?,
       state = CASE
         WHEN request = 'stop' THEN 'stopped'
         WHEN state = 'stopped' THEN 'stopped'
         WHEN request = 'pause' THEN 'paused'
         WHEN request = 'resume' THEN 'running'
         WHEN state = 'lost' THEN 'running'
         ELSE state END,
       request = NULL
     WHERE client_id = ? RETURNING *`,
    [at, clientId],
  );
  if (!row) throw new IppToPspsError('client_unknown', `client ${clientId} is not in the clients table (was the tracking database reset?)`);
  await q.run(`UPDATE queue_item SET claim_expires = ? WHERE claimed_by = ? AND state = 'claimed'`,
    [new Date(now.getTime() + options.leaseMs).toISOString(), clientId]);
  return toClient(row);
}

/** Records the item a client is working on (null when none), for the console and metrics. */
export async function setClientItem(q: Queryable, clientId: number, itemId: number | null): Promise<void> {
  await q.run('UPDATE client SET current_item = ? WHERE client_id = ?', [itemId, clientId]);
}

/** Leaves a request for a live client; a `client_unknown` or `client_ended` error otherwise. */
export async function requestClient(q: Queryable, clientId: number, request: ClientRequest): Promise<ClientRecord> {
  const row = await q.get('SELECT * FROM client WHERE client_id = ?', [clientId]);
  if (!row) throw new IppToPspsError('client_unknown', `no client ${clientId} in the clients table`);
  const client = toClient(row);
  if (client.state === 'exited' || client.state === 'lost') {
    throw new IppToPspsError('client_ended', `client ${clientId} (${client.program} ${client.config} on ${client.host}, pid ${client.pid}) has ${client.state}; there is nothing to ${request}`);
  }
  const updated = await q.get('UPDATE client SET request = ? WHERE client_id = ? RETURNING *', [request, clientId]);
  return toClient(updated!);
}

/** Leaves a request for every live client of a program (and config, when given); returns how many. */
export async function requestClients(q: Queryable, filter: { program?: string; config?: string }, request: ClientRequest): Promise<number> {
  const where = [`state IN ('running', 'paused')`];
  const params: string[] = [request];
  if (filter.program) { where.push('program = ?'); params.push(filter.program); }
  if (filter.config) { where.push('config = ?'); params.push(filter.config); }
  const { changes } = await q.run(`UPDATE client SET request = ? WHERE ${where.join(' AND ')}`, params);
  return changes;
}

/**
 * Marks a client exited: its claims go back to the queue (not counted as an attempt), its
 * stripe and scratch database are free again.
 */
export async function markClientExited(q: Queryable, clientId: number, detail?: string, now = new Date()): Promise<void> {
  const at = now.toISOString();
  await q.run(`UPDATE client SET state = 'exited', request = NULL, current_item = NULL, ended_at = ?, detail = ? WHERE client_id = ?`,
    [at, detail ?? null, clientId]);
  await releaseHoldings(q, [clientId], at, true);
}

/**
 * Marks live clients whose heartbeat is older than `staleMs` as lost and frees their stripes
 * and scratch databases. Their item claims are left to expire by lease (a slow but live
 * program may still finish its item). Returns the ids marked.
 */
export async function markLostClients(q: Queryable, staleMs: number, now = new Date()): Promise<number[]> {
  const cutoff = new Date(now.getTime() - staleMs).toISOString();
  const rows = await q.all<{ client_id: number }>(
    `UPDATE client SET state = 'lost', ended_at = ?, detail = 'no heartbeat since ' || heartbeat_at
     WHERE state IN ('running', 'paused', 'stopped') AND heartbeat_at < ? RETURNING client_id`,
    [now.toISOString(), cutoff],
  );
  const ids = rows.map((r) => Number(r.client_id));
  if (ids.length) await releaseHoldings(q, ids, now.toISOString(), false);
  return ids;
}

async function releaseHoldings(q: Queryable, ids: readonly number[], at: string, items: boolean): Promise<void> {
  const marks = ids.map(() => '?').join(', ');
  await q.run(`UPDATE stripe SET holder = NULL, held_at = NULL WHERE holder IN (${marks})`, ids);
  await q.run(`UPDATE scratch SET holder = NULL, held_at = NULL WHERE holder IN (${marks})`, ids);
  if (items) {
    await q.run(`UPDATE queue_item SET state = 'pending', claimed_by = NULL, claim_expires = NULL, updated_at = ?
                 WHERE claimed_by IN (${marks}) AND state = 'claimed'`, [at, ...ids]);
  }
}

/** The client of this id, or undefined. */
export async function findClient(q: Queryable, clientId: number): Promise<ClientRecord | undefined> {
  const row = await q.get('SELECT * FROM client WHERE client_id = ?', [clientId]);
  return row ? toClient(row) : undefined;
}

/** Clients, newest first; only the live ones (running, paused, stopped but not yet exited) when asked. */
export async function listClients(q: Queryable, options: { live?: boolean; program?: string } = {}): Promise<ClientRecord[]> {
  const where: string[] = [];
  const params: string[] = [];
  if (options.live) where.push(`state IN ('running', 'paused', 'stopped')`);
  if (options.program) { where.push('program = ?'); params.push(options.program); }
  const rows = await q.all(`SELECT * FROM client${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY client_id DESC`, params);
  return rows.map(toClient);
}

function toClient(row: Row): ClientRecord {
  return Object.freeze({
    client_id: Number(row.client_id),
    program: String(row.program),
    config: String(row.config),
    host: String(row.host),
    pid: Number(row.pid),
    started_at: String(row.started_at),
    heartbeat_at: String(row.heartbeat_at),
    state: String(row.state) as ClientState,
    request: (row.request ?? null) as ClientRequest | null,
    log_path: (row.log_path ?? null) as string | null,
    current_item: row.current_item === null || row.current_item === undefined ? null : Number(row.current_item),
    ended_at: (row.ended_at ?? null) as string | null,
    detail: (row.detail ?? null) as string | null,
  });
}
