import { describeValue } from './errors.js'

/** A duration as the user wrote it (`250ms`, `2s`, `1m30s`); see {@link parseDuration}. */
export type Duration = string

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
const DURATION = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/g
const EXAMPLES = '"250ms", "2s", "1m" or "1h"'

/**
 * Milliseconds in a duration string: one or more `<number><unit>` parts with units
 * ms, s, m, h (`250ms`, `1.5s`, `1m30s`). The total must be a whole number of
 * milliseconds. Throws a RangeError whose message is the "expected ..., got ..." text.
 * Bare numbers are rejected: `timeout: 5` could mean seconds or milliseconds.
 */
export function parseDuration(value: unknown): number {
  if (typeof value === 'number') {
    throw new RangeError(
      `expected a duration with a unit such as ${EXAMPLES}, got the bare number ${value} (add a unit, e.g. "${value}s" or "${value}ms")`,
    )
  }
  if (typeof value !== 'string' || !DURATION.test(value)) {
    throw new RangeError(`expected a duration such as ${EXAMPLES}, got ${describeValue(value)}`)
  }
  let total = 0
  for (const [, amount, unit] of value.matchAll(PART)) {
    total += Number(amount) * (UNIT_MS[unit as string] as number)
  }
  // Float products such as 1.1 * 1000 land a hair off a whole number.
  const rounded = Math.round(total)
  if (Math.abs(total - rounded) > 1e-6) {
    throw new RangeError(`expected a whole number of milliseconds, got ${describeValue(value)}`)
  }
  if (!Number.isSafeInteger(rounded)) {
    throw new RangeError(`expected a duration that fits in milliseconds, got ${describeValue(value)}`)
  }
  return rounded
}

/** The shortest exact spelling of a millisecond count (`1500` -> `1500ms`, `120000` -> `2m`). */
export function formatDuration(ms: number): Duration {
  if (ms !== 0) {
    for (const unit of ['h', 'm', 's'] as const) {
      const size = UNIT_MS[unit] as number
      if (ms % size === 0) return `${ms / size}${unit}`
    }
  }
  return `${ms}ms`
}
