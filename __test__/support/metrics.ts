/** A small Prometheus text-format (0.0.4) reader: enough to assert on counters and histograms. */

export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

export type LabelMatch = Record<string, string>

const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {}
  let i = 0
  while (i < text.length) {
    while (text[i] === ' ' || text[i] === ',') i++
    if (i >= text.length) break
    const eq = text.indexOf('=', i)
    if (eq < 0 || text[eq + 1] !== '"') throw new Error(`bad label set in metrics line: ${line}`)
    const name = text.slice(i, eq).trim()
    let value = ''
    let j = eq + 2
    for (; j < text.length && text[j] !== '"'; j++) {
      if (text[j] === '\\') {
        j++
        const escaped = text[j]
        value += escaped === 'n' ? '\n' : escaped
      } else {
        value += text[j]
      }
    }
    if (j >= text.length) throw new Error(`unterminated label value in metrics line: ${line}`)
    labels[name] = value
    i = j + 1
  }
  return labels
}

export function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = []
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const m = SAMPLE_LINE.exec(line)
    if (!m) throw new Error(`unparseable metrics line: ${line}`)
    const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3])
    samples.push({ name: m[1]!, labels: m[2] ? parseLabels(m[2], line) : {}, value })
  }
  return samples
}

/** The `# TYPE` declared for each metric family. */
export function metricTypes(text: string): Map<string, string> {
  const types = new Map<string, string>()
  for (const line of text.split('\n')) {
    const m = /^# TYPE (\S+) (\S+)/.exec(line)
    if (m) types.set(m[1]!, m[2]!)
  }
  return types
}

export function matches(sample: Sample, match: LabelMatch): boolean {
  return Object.entries(match).every(([k, v]) => sample.labels[k] === v)
}

export function select(samples: Sample[], name: string, match: LabelMatch = {}): Sample[] {
  return samples.filter((s) => s.name === name && matches(s, match))
}

/** Sum of every series of `name` whose labels include `match`. 0 when none exist. */
export function sum(samples: Sample[], name: string, match: LabelMatch = {}): number {
  return select(samples, name, match).reduce((acc, s) => acc + s.value, 0)
}
