/** The queue's address and name (no BullMQ import: commands check their flags without loading it). */
import type { ConnectionOptions } from 'bullmq';
import { SegGradCamError } from '../errors.js';

export const DEFAULT_QUEUE_NAME = 'seg-grad-cam-batch';

/** redis://host:port[/db] as BullMQ connection options (workers need maxRetriesPerRequest null). */
export function connectionOf(url: string): ConnectionOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new SegGradCamError(`--queue must be a redis:// URL (got '${url}')`, 'usage');
  }
  if (u.protocol !== 'redis:') throw new SegGradCamError(`--queue must be a redis:// URL (got '${url}')`, 'usage');
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : undefined;
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(db !== undefined && Number.isInteger(db) ? { db } : {}),
    maxRetriesPerRequest: null,
  };
}
