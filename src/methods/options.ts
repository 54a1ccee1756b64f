import { SegGradCamError } from '../errors.js';

/** Option checks: a bad value is a usage error naming the option (one line in the CLI). */
export function positiveInteger(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) throw new SegGradCamError(`${name} must be a positive integer, got ${value}`, 'usage');
  return value;
}

export function nonNegative(value: number, name: string): number {
  if (!Number.isFinite(value) || value < 0) throw new SegGradCamError(`${name} must be a number >= 0, got ${value}`, 'usage');
  return value;
}

export function positive(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0) throw new SegGradCamError(`${name} must be a number > 0, got ${value}`, 'usage');
  return value;
}
