/**
 * A rejected configuration: every problem found, one self-contained line each
 * (`mesh.yaml: document 2 (Service "orders"): endpoints[0].address: expected HOST:PORT, got "localhost"`).
 *
 * `message` is the first line, plus "(and N more)" when there are several, so that code
 * which only prints `err.message` still says something useful; print `errors` for all.
 */
/** The first line of a message: user-facing errors are one line. */
export function firstLine(message: string): string {
  return message.split('\n', 1)[0] ?? ''
}

/** The first line of any thrown value's message. */
export function messageOf(err: unknown): string {
  return firstLine(err instanceof Error ? err.message : String(err))
}

export class ConfigError extends Error {
  readonly errors: readonly string[]

  constructor(errors: readonly string[]) {
    if (errors.length === 0) throw new TypeError('ConfigError needs at least one error')
    const first = errors[0] as string
    super(errors.length > 1 ? `${first} (and ${errors.length - 1} more)` : first)
    this.name = 'ConfigError'
    this.errors = errors
  }
}

/** How a value appears in a message: strings quoted, containers named, long text cut short. */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'nothing'
  if (typeof value === 'string') {
    const shown = value.length > 60 ? `${value.slice(0, 57)}...` : value
    return JSON.stringify(shown)
  }
  if (typeof value === 'number') return `the number ${value}`
  if (typeof value === 'boolean') return `the boolean ${value}`
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'a mapping'
  return `a ${typeof value}`
}

/** Levenshtein distance, small inputs only (field names, enum values). */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1)
      current[j] = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, substitution)
    }
    previous = current
  }
  return previous[b.length] as number
}

/**
 * The candidate the user most likely meant, if one is close enough to be a typo:
 * same letters in another case, or a few edits away relative to the word's length.
 */
export function closestMatch(input: string, candidates: readonly string[]): string | undefined {
  const lowered = input.toLowerCase()
  // A word the user shortened or extended (Prefix -> PathPrefix) is a likely intent too.
  if (lowered.length >= 3) {
    const containing = candidates.filter((c) => c.toLowerCase().includes(lowered) || lowered.includes(c.toLowerCase()))
    if (containing.length === 1) return containing[0]
  }
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of candidates) {
    const distance = editDistance(lowered, candidate.toLowerCase())
    if (distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  const allowed = Math.max(1, Math.min(3, Math.floor(input.length / 3)))
  return bestDistance <= allowed ? best : undefined
}

/** ` (did you mean "x"?)` or nothing. */
export function suggestion(input: string, candidates: readonly string[]): string {
  const match = closestMatch(input, candidates)
  return match === undefined ? '' : ` (did you mean ${JSON.stringify(match)}?)`
}
