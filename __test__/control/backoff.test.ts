/** Backoff: the exponential schedule, its cap, both jitters and reset. */
import { describe, expect, it } from 'vitest'

import { Backoff, formatDelay } from '../../src/control/backoff.js'

/** A random source that plays back the given values in a loop. */
function sequence(...values: number[]): () => number {
  let i = 0
  return () => values[i++ % values.length] as number
}

describe('Backoff', () => {
  it('doubles from the base up to the cap without jitter', () => {
    const backoff = new Backoff({ baseMs: 250, capMs: 10_000, jitter: 'none' })
    const delays = Array.from({ length: 9 }, () => backoff.next())
    expect(delays).toEqual([250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000])
    expect(backoff.attempts).toBe(9)
  })

  it('defaults to base 250 ms, cap 10 s', () => {
    const backoff = new Backoff({ jitter: 'none' })
    expect(backoff.baseMs).toBe(250)
    expect(backoff.capMs).toBe(10_000)
    expect(backoff.next()).toBe(250)
  })

  it('full jitter spreads over [0, ceiling]', () => {
    const low = new Backoff({ baseMs: 100, capMs: 1000, jitter: 'full', random: () => 0 })
    const high = new Backoff({ baseMs: 100, capMs: 1000, jitter: 'full', random: () => 0.999999 })
    expect([low.next(), low.next(), low.next()]).toEqual([0, 0, 0])
    expect([high.next(), high.next(), high.next(), high.next(), high.next()]).toEqual([100, 200, 400, 800, 1000])
    const mid = new Backoff({ baseMs: 100, capMs: 1000, jitter: 'full', random: () => 0.5 })
    expect([mid.next(), mid.next(), mid.next()]).toEqual([50, 100, 200])
  })

  it('equal jitter (the default) always waits at least half the ceiling', () => {
    const low = new Backoff({ baseMs: 100, capMs: 1000, random: () => 0 })
    expect([low.next(), low.next(), low.next(), low.next(), low.next()]).toEqual([50, 100, 200, 400, 500])
    const high = new Backoff({ baseMs: 100, capMs: 1000, random: () => 0.999999 })
    expect([high.next(), high.next(), high.next()]).toEqual([100, 200, 400])
  })

  it('stays within its bounds for any random value', () => {
    const backoff = new Backoff({ baseMs: 250, capMs: 10_000, random: Math.random })
    for (let attempt = 0; attempt < 200; attempt++) {
      const ceiling = Math.min(10_000, 250 * 2 ** attempt)
      const delay = backoff.next()
      expect(delay).toBeGreaterThanOrEqual(Math.floor(ceiling / 2))
      expect(delay).toBeLessThanOrEqual(ceiling)
    }
  })

  it('reset starts the schedule over', () => {
    const backoff = new Backoff({ baseMs: 250, capMs: 10_000, jitter: 'none' })
    backoff.next()
    backoff.next()
    backoff.next()
    backoff.reset()
    expect(backoff.attempts).toBe(0)
    expect(backoff.next()).toBe(250)
  })

  it('varies the delay between proxies with the same schedule', () => {
    const a = new Backoff({ baseMs: 1000, capMs: 1000, random: sequence(0.1, 0.9) })
    expect([a.next(), a.next()]).toEqual([550, 950])
  })

  it('refuses nonsense settings', () => {
    expect(() => new Backoff({ baseMs: 0 })).toThrow('backoff.baseMs: expected a positive number of ms, got 0')
    expect(() => new Backoff({ baseMs: 500, capMs: 100 })).toThrow('backoff.capMs: expected a number of ms of at least baseMs (500), got 100')
    expect(() => new Backoff({ factor: 0.5 })).toThrow('backoff.factor: expected a number of at least 1, got 0.5')
  })

  it('a base above the default cap raises the cap to the base', () => {
    const backoff = new Backoff({ baseMs: 20_000, jitter: 'none' })
    expect(backoff.capMs).toBe(20_000)
    expect([backoff.next(), backoff.next()]).toEqual([20_000, 20_000])
  })
})

describe('formatDelay', () => {
  it('shows ms below a second and tenths of seconds above', () => {
    expect(formatDelay(0)).toBe('0ms')
    expect(formatDelay(180.4)).toBe('180ms')
    expect(formatDelay(999)).toBe('999ms')
    expect(formatDelay(1000)).toBe('1s')
    expect(formatDelay(1234)).toBe('1.2s')
    expect(formatDelay(10_000)).toBe('10s')
  })
})
