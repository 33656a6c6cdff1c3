// Exponential backoff with jitter for talking to the control plane. Without jitter, every
// proxy of a mesh retries at the same instants after a control plane restart and the
// herd arrives together; jitter spreads the reconnects over the whole window.

export type Jitter = 'full' | 'equal' | 'none'

export interface BackoffOptions {
  /** The first ceiling (default 250 ms). */
  baseMs?: number
  /** The ceiling never grows beyond this (default 10 s). */
  capMs?: number
  /** Growth per attempt (default 2). */
  factor?: number
  /**
   * full: uniform in [0, ceiling], spreads best but may retry at once;
   * equal: ceiling/2 plus uniform in [0, ceiling/2], always waits at least half;
   * none: the ceiling itself (for tests of the schedule, not for production).
   * Default equal.
   */
  jitter?: Jitter
  /** Uniform random in [0, 1); injectable for tests. */
  random?: () => number
}

export const DEFAULT_BACKOFF_BASE_MS = 250
export const DEFAULT_BACKOFF_CAP_MS = 10_000

/** Checks backoff settings given by a caller; throws a TypeError naming the bad one. */
export function checkBackoffOptions(options: BackoffOptions, where: string): void {
  const base = options.baseMs ?? DEFAULT_BACKOFF_BASE_MS
  const cap = options.capMs ?? Math.max(DEFAULT_BACKOFF_CAP_MS, base)
  if (!(Number.isFinite(base) && base > 0)) throw new TypeError(`${where}.baseMs: expected a positive number of ms, got ${base}`)
  if (!(Number.isFinite(cap) && cap >= base)) {
    throw new TypeError(`${where}.capMs: expected a number of ms of at least baseMs (${base}), got ${cap}`)
  }
  if (options.factor !== undefined && !(Number.isFinite(options.factor) && options.factor >= 1)) {
    throw new TypeError(`${where}.factor: expected a number of at least 1, got ${options.factor}`)
  }
}

/**
 * The delay schedule of one retry loop. `next()` gives the delay before the next attempt
 * and advances; `reset()` starts over once the peer proved healthy (a stream delivered a
 * push, a call succeeded), so a brief blip after hours of uptime retries quickly.
 */
export class Backoff {
  readonly baseMs: number
  readonly capMs: number
  private readonly factor: number
  private readonly jitter: Jitter
  private readonly random: () => number
  private attempt = 0

  constructor(options: BackoffOptions = {}) {
    checkBackoffOptions(options, 'backoff')
    this.baseMs = options.baseMs ?? DEFAULT_BACKOFF_BASE_MS
    this.capMs = options.capMs ?? Math.max(DEFAULT_BACKOFF_CAP_MS, this.baseMs)
    this.factor = options.factor ?? 2
    this.jitter = options.jitter ?? 'equal'
    this.random = options.random ?? Math.random
  }

  /** Attempts made since the last reset. */
  get attempts(): number {
    return this.attempt
  }

  /** The ceiling for the next attempt, before jitter. */
  get ceilingMs(): number {
    // Bounded exponent: factor^attempt overflows to Infinity long after it passed the cap.
    const exponent = Math.min(this.attempt, 64)
    return Math.min(this.capMs, this.baseMs * this.factor ** exponent)
  }

  /** The delay before the next attempt, in whole ms. */
  next(): number {
    const ceiling = this.ceilingMs
    this.attempt++
    const r = Math.min(Math.max(this.random(), 0), 1)
    switch (this.jitter) {
      case 'full':
        return Math.round(ceiling * r)
      case 'equal':
        return Math.round(ceiling / 2 + (ceiling / 2) * r)
      case 'none':
        return Math.round(ceiling)
    }
  }

  reset(): void {
    this.attempt = 0
  }
}

/** A retry delay for log lines: `180ms`, `1.2s`, `10s`. */
export function formatDelay(ms: number): string {
  const rounded = Math.max(0, Math.round(ms))
  if (rounded < 1000) return `${rounded}ms`
  const seconds = Math.round(rounded / 100) / 10
  return `${seconds}s`
}
