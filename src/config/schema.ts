/**
 * A small declarative field walker: each resource kind is described once as nested
 * schemas, and one walk checks every field, applies defaults, reports unknown fields
 * with a suggestion, and collects every problem with its path instead of stopping at
 * the first. Schemas produce the normalised value; a value that failed yields INVALID.
 */
import { parseHostPort, type HostPortOptions } from './address.js'
import { formatDuration, parseDuration, type Duration } from './duration.js'
import { describeValue, suggestion } from './errors.js'

export type PathSegment = string | number
export type FieldPath = readonly PathSegment[]

export interface Issue {
  path: FieldPath
  message: string
}

/** Collects problems during a walk, plus values that defaults may depend on. */
export class ParseContext {
  readonly errors: Issue[] = []
  readonly warnings: Issue[] = []
  /** The namespace of the resource being walked: the default for references in it. */
  namespace = 'default'
  /** mesh-control runs the Services' active health checks (see ValidateOptions). */
  activeHealthChecks = false

  error(path: FieldPath, message: string): void {
    this.errors.push({ path, message })
  }

  warn(path: FieldPath, message: string): void {
    this.warnings.push({ path, message })
  }
}

export const INVALID: unique symbol = Symbol('invalid')
export type Parsed<T> = T | typeof INVALID

export interface Schema<T> {
  /** What a valid value looks like, for "expected ..." messages ("a string", "a list"). */
  readonly expected: string
  parse(value: unknown, path: FieldPath, ctx: ParseContext): Parsed<T>
}

/** A rule across the parts of a valid value; reports with ctx.error. */
export type Check<T> = (value: T, path: FieldPath, ctx: ParseContext) => void

/** `rules[0].matches[1].path`, `labels["app.kubernetes.io/name"]`. */
export function formatPath(path: FieldPath): string {
  let text = ''
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(segment)) text += text === '' ? segment : `.${segment}`
    else text += `[${JSON.stringify(segment)}]`
  }
  return text
}

export function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function typeError(ctx: ParseContext, path: FieldPath, expected: string, value: unknown, hint = ''): typeof INVALID {
  // "expected one of a, b, c; got x" reads better than a comma after a list.
  const separator = expected.replace(/\([^)]*\)/g, '').includes(',') ? ';' : ','
  ctx.error(path, `expected ${expected}${separator} got ${describeValue(value)}${hint}`)
  return INVALID
}

/** A schema from a function that either returns the value or throws a RangeError with the message. */
export function fromParser<T>(expected: string, parse: (value: unknown) => T): Schema<T> {
  return {
    expected,
    parse(value, path, ctx) {
      try {
        return parse(value)
      } catch (err) {
        if (!(err instanceof RangeError)) throw err
        ctx.error(path, err.message)
        return INVALID
      }
    },
  }
}

export interface StringOptions {
  /** Must match the whole string. */
  pattern?: RegExp
  /** Replaces "a string" in messages when a pattern is given. */
  expected?: string
  maxLength?: number
  /** Extra check on a well-formed string; returns a message ("expected ...") when bad. */
  check?: (value: string) => string | undefined
}

/** A non-empty string. */
export function string(options: StringOptions = {}): Schema<string> {
  const expected = options.expected ?? 'a non-empty string'
  return {
    expected,
    parse(value, path, ctx) {
      if (typeof value !== 'string') {
        const hint = typeof value === 'number' || typeof value === 'boolean' ? ' (quote it to make it a string)' : ''
        return typeError(ctx, path, 'a string', value, hint)
      }
      const tooLong = options.maxLength !== undefined && value.length > options.maxLength
      if (value === '' || tooLong || (options.pattern && !options.pattern.test(value))) {
        return typeError(ctx, path, expected, value)
      }
      const problem = options.check?.(value)
      if (problem !== undefined) {
        ctx.error(path, `${problem}, got ${describeValue(value)}`)
        return INVALID
      }
      return value
    },
  }
}

/** An integer in [min, max]. */
export function integer(min: number, max: number = Number.MAX_SAFE_INTEGER): Schema<number> {
  const expected =
    max !== Number.MAX_SAFE_INTEGER
      ? `an integer from ${min} to ${max}`
      : min === 1
        ? 'a positive integer'
        : `an integer of at least ${min}`
  return {
    expected,
    parse(value, path, ctx) {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
        return typeError(ctx, path, expected, value)
      }
      return value
    },
  }
}

/** A finite number above `exclusiveMin`. */
export function numberAbove(exclusiveMin: number): Schema<number> {
  const expected = exclusiveMin === 0 ? 'a positive number' : `a number above ${exclusiveMin}`
  return {
    expected,
    parse(value, path, ctx) {
      if (typeof value !== 'number' || !Number.isFinite(value) || value <= exclusiveMin) {
        return typeError(ctx, path, expected, value)
      }
      return value
    },
  }
}

export function boolean(): Schema<boolean> {
  return {
    expected: 'true or false',
    parse(value, path, ctx) {
      return typeof value === 'boolean' ? value : typeError(ctx, path, 'true or false', value)
    },
  }
}

/**
 * One of a fixed set of strings. With `caseInsensitive`, any spelling is accepted and
 * normalised to the listed one (HTTP methods).
 */
export function oneOf<const T extends string>(values: readonly T[], options: { caseInsensitive?: boolean } = {}): Schema<T> {
  const expected = values.length === 1 ? JSON.stringify(values[0]) : `one of ${values.join(', ')}`
  return {
    expected,
    parse(value, path, ctx) {
      if (typeof value === 'string') {
        const found = options.caseInsensitive
          ? values.find((candidate) => candidate.toLowerCase() === value.toLowerCase())
          : values.find((candidate) => candidate === value)
        if (found !== undefined) return found
        return typeError(ctx, path, expected, value, suggestion(value, values))
      }
      return typeError(ctx, path, expected, value)
    },
  }
}

export interface DurationOptions {
  /** Smallest allowed, in ms (default 0). */
  minMs?: number
  /** Largest allowed, in ms (default 24h: the engine takes u32 milliseconds, and longer is a typo). */
  maxMs?: number
}

const DAY_MS = 24 * 3_600_000

/** A duration string (kept as written; see parseDuration) within bounds. */
export function duration(options: DurationOptions = {}): Schema<Duration> {
  const minMs = options.minMs ?? 0
  const maxMs = options.maxMs ?? DAY_MS
  return {
    expected: 'a duration',
    parse(value, path, ctx) {
      let ms: number
      try {
        ms = parseDuration(value)
      } catch (err) {
        if (!(err instanceof RangeError)) throw err
        ctx.error(path, err.message)
        return INVALID
      }
      if (ms < minMs) {
        ctx.error(path, `expected a duration of at least ${formatDuration(minMs)}, got ${describeValue(value)}`)
        return INVALID
      }
      if (ms > maxMs) {
        ctx.error(path, `expected a duration of at most ${formatDuration(maxMs)}, got ${describeValue(value)}`)
        return INVALID
      }
      return value as Duration
    },
  }
}

/** `IP:PORT` / `[IPv6]:PORT`, kept as written. */
export function hostPort(options: HostPortOptions = {}): Schema<string> {
  return fromParser('HOST:PORT', (value) => {
    parseHostPort(value, options)
    return value as string
  })
}

/** A percentage from 0 to 100: a number (`10`) or a string with a percent sign (`"20%"`). */
export function percent(): Schema<number> {
  const expected = 'a percentage from 0 to 100 (e.g. 20 or "20%")'
  return {
    expected,
    parse(value, path, ctx) {
      let amount: number | undefined
      if (typeof value === 'number') amount = value
      else if (typeof value === 'string' && /^\d+(?:\.\d+)?%$/.test(value)) amount = Number(value.slice(0, -1))
      if (amount === undefined || !Number.isFinite(amount) || amount < 0 || amount > 100) {
        return typeError(ctx, path, expected, value)
      }
      return amount
    },
  }
}

export interface ArrayOptions<T> {
  minItems?: number
  /** Cross-item checks (duplicates, ...), run when every item is valid. */
  check?: Check<T[]>
}

/** A list; every item is checked, so one bad item does not hide another. */
export function array<T>(item: Schema<T>, options: ArrayOptions<T> = {}): Schema<T[]> {
  const expected = 'a list'
  return {
    expected,
    parse(value, path, ctx) {
      if (!Array.isArray(value)) {
        const hint = isMapping(value) ? ' (write each item on its own line starting with "- ")' : ''
        return typeError(ctx, path, expected, value, hint)
      }
      if (options.minItems !== undefined && value.length < options.minItems) {
        ctx.error(path, `expected at least ${options.minItems} item${options.minItems === 1 ? '' : 's'}, got ${value.length}`)
        return INVALID
      }
      const items: T[] = []
      let valid = true
      value.forEach((element, index) => {
        const parsed = item.parse(element, [...path, index], ctx)
        if (parsed === INVALID) valid = false
        else items.push(parsed)
      })
      if (!valid) return INVALID
      return runCheck(items, path, ctx, options.check)
    },
  }
}

/** A mapping of arbitrary keys (labels); `key` checks the keys. */
export function record<T>(valueSchema: Schema<T>, key: Schema<string> = string()): Schema<Record<string, T>> {
  const expected = 'a mapping'
  return {
    expected,
    parse(value, path, ctx) {
      if (!isMapping(value)) return typeError(ctx, path, expected, value)
      const out: Record<string, T> = {}
      let valid = true
      for (const [name, element] of Object.entries(value)) {
        const parsedKey = key.parse(name, [...path, name], ctx)
        const parsed = valueSchema.parse(element, [...path, name], ctx)
        if (parsedKey === INVALID || parsed === INVALID) valid = false
        else Object.defineProperty(out, parsedKey, { value: parsed, enumerable: true, writable: true, configurable: true })
      }
      return valid ? out : INVALID
    },
  }
}

/**
 * A value that may be written in different shapes (`loadBalancer: ewma` or
 * `loadBalancer: { type: ring_hash, hashHeader: x-user }`): picks the schema by the
 * value's JSON type.
 */
export function byShape<T>(
  expected: string,
  shapes: { string?: Schema<T>; number?: Schema<T>; mapping?: Schema<T> },
): Schema<T> {
  return {
    expected,
    parse(value, path, ctx) {
      const schema =
        typeof value === 'string'
          ? shapes.string
          : typeof value === 'number'
            ? shapes.number
            : isMapping(value)
              ? shapes.mapping
              : undefined
      return schema ? schema.parse(value, path, ctx) : typeError(ctx, path, expected, value)
    },
  }
}

/** Transforms the value of a schema once it is valid. */
export function map<A, B>(schema: Schema<A>, transform: (value: A) => B): Schema<B> {
  return {
    expected: schema.expected,
    parse(value, path, ctx) {
      const parsed = schema.parse(value, path, ctx)
      return parsed === INVALID ? INVALID : transform(parsed)
    },
  }
}

/** How one field of a mapping is treated when absent (`undefined` or YAML's empty `null`). */
export interface Field<T> {
  readonly schema: Schema<NonNullable<T>>
  readonly required: boolean
  /** Value used when the field is absent; may depend on the walk (the resource's namespace). */
  readonly fallback?: (ctx: ParseContext) => T
  /** Warns "accepted but not enforced in this version" when present and this returns true. */
  readonly notEnforced?: (value: NonNullable<T>, ctx: ParseContext) => boolean
}

export function required<T>(schema: Schema<T>): Field<T> {
  return { schema: schema as Schema<NonNullable<T>>, required: true }
}

export function optional<T>(schema: Schema<T>): Field<T | undefined> {
  return { schema: schema as Schema<NonNullable<T>>, required: false }
}

/** Absent means `fallback` (a value, or a function of the walk for context-dependent defaults). */
export function withDefault<T>(schema: Schema<T>, fallback: T | ((ctx: ParseContext) => T)): Field<T> {
  const compute = typeof fallback === 'function' ? (fallback as (ctx: ParseContext) => T) : () => structuredClone(fallback)
  return { schema: schema as Schema<NonNullable<T>>, required: false, fallback: compute }
}

/**
 * Fields that this version validates fully but does not act on yet: they are never
 * silently ignored, the loader reports one warning per field present.
 */
export function notEnforced<T>(
  field: Field<T>,
  when: (value: NonNullable<T>, ctx: ParseContext) => boolean = () => true,
): Field<T> {
  return { ...field, notEnforced: when }
}

export const NOT_ENFORCED = 'accepted but not enforced in this version'

export interface ObjectOptions<T> {
  /** Checks across fields, run when every field is valid; report with ctx.error. */
  check?: Check<T>
  /** Targeted advice for a known wrong field name (`metadata`). */
  hints?: Readonly<Record<string, string>>
  expected?: string
}

export type Fields<T> = { readonly [K in keyof T]-?: Field<T[K]> }

/**
 * A mapping with a fixed set of fields. Unknown fields are errors (a typo would otherwise
 * silently drop a setting). Output keys follow the declaration order.
 */
export function object<T extends object>(fields: Fields<T>, options: ObjectOptions<T> = {}): Schema<T> {
  const expected = options.expected ?? 'a mapping'
  const names = Object.keys(fields)
  return {
    expected,
    parse(value, path, ctx) {
      if (!isMapping(value)) return typeError(ctx, path, expected, value)
      let valid = true
      const parsedFields = new Map<string, unknown>()
      const present = new Set<string>()
      for (const [key, raw] of Object.entries(value)) {
        const field = Object.hasOwn(fields, key) ? (fields as Record<string, Field<unknown>>)[key] : undefined
        if (field === undefined) {
          const hint =
            options.hints !== undefined && Object.hasOwn(options.hints, key) ? ` (${options.hints[key]})` : suggestion(key, names)
          ctx.error([...path, key], `unknown field${hint}`)
          valid = false
          continue
        }
        if (raw === null || raw === undefined) continue
        present.add(key)
        const parsed = field.schema.parse(raw, [...path, key], ctx)
        if (parsed === INVALID) {
          valid = false
          continue
        }
        if (field.notEnforced?.(parsed, ctx)) ctx.warn([...path, key], NOT_ENFORCED)
        parsedFields.set(key, parsed)
      }
      const out: Record<string, unknown> = {}
      for (const key of names) {
        const field = (fields as Record<string, Field<unknown>>)[key] as Field<unknown>
        if (parsedFields.has(key)) {
          out[key] = parsedFields.get(key)
        } else if (present.has(key)) {
          // present but invalid: already reported
        } else if (field.required) {
          const message =
            value[key] === null
              ? `expected ${field.schema.expected}, got an empty value`
              : `required field is missing (expected ${field.schema.expected})`
          ctx.error([...path, key], message)
          valid = false
        } else if (field.fallback) {
          out[key] = field.fallback(ctx)
        }
      }
      if (!valid) return INVALID
      return runCheck(out as T, path, ctx, options.check)
    },
  }
}

function runCheck<T>(value: T, path: FieldPath, ctx: ParseContext, check?: Check<T>): Parsed<T> {
  if (!check) return value
  const before = ctx.errors.length
  check(value, path, ctx)
  return ctx.errors.length === before ? value : INVALID
}
