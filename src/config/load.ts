/**
 * Reading configuration files: YAML or JSON, one or many documents, into validated
 * resources. A file is accepted whole or rejected whole.
 */
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { LineCounter, parseAllDocuments, visit, type Document } from 'yaml'
import { ConfigError } from './errors.js'
import { validateDocuments, type LoadResult, type SourceDocument, type ValidateOptions } from './validate.js'

export type LoadOptions = ValidateOptions

/** `Map keys must be unique at line 2, column 1:\n\n...` -> `Map keys must be unique`. */
function firstLine(message: string): string {
  return (message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '').replace(/:$/, '')
}

/**
 * The documents of a YAML (or JSON, which is YAML) text, numbered by position. A single
 * top-level list is read as a list of documents (`[{...}, {...}]` in JSON). Syntax errors
 * throw a ConfigError with one `file:line:column: ...` line each.
 */
export function parseDocuments(text: string, fileLabel: string): SourceDocument[] {
  const lineCounter = new LineCounter()
  const parsed = parseAllDocuments(text, { lineCounter, merge: true, prettyErrors: true })
  // parseAllDocuments returns an EmptyStream (an empty array) for text with no documents.
  const docs: Document.Parsed[] = Array.from(parsed as Iterable<Document.Parsed>)

  const position = (offset: number): string => {
    const { line, col } = lineCounter.linePos(offset)
    return `${fileLabel}:${line}:${col}`
  }
  const errors: string[] = []
  for (const doc of docs) {
    for (const problem of [...doc.errors, ...doc.warnings]) {
      errors.push(`${position(problem.pos[0])}: YAML syntax error: ${firstLine(problem.message)}`)
    }
  }
  if (errors.length > 0) throw new ConfigError(errors)

  const documents: SourceDocument[] = []
  docs.forEach((doc, index) => {
    try {
      documents.push({ number: index + 1, value: doc.toJS({ maxAliasCount: 100 }) })
    } catch (err) {
      // toJS throws on an alias to an unknown anchor and on alias explosions.
      let offset = doc.range[0]
      visit(doc, {
        Alias(_, alias) {
          if (alias.resolve(doc) === undefined) {
            offset = alias.range?.[0] ?? offset
            return visit.BREAK
          }
          return undefined
        },
      })
      errors.push(`${position(offset)}: YAML error: ${firstLine((err as Error).message)}`)
    }
  })
  if (errors.length > 0) throw new ConfigError(errors)

  const nonEmpty = documents.filter((d) => d.value !== null && d.value !== undefined)
  const only = nonEmpty[0]
  if (nonEmpty.length === 1 && only !== undefined && Array.isArray(only.value)) {
    return only.value.map((value: unknown, index) => ({ number: index + 1, value }))
  }
  return nonEmpty
}

/**
 * Validates the text of a config file. `fileLabel` names it in every message (use the
 * path the user gave). Returns resources and warnings, or throws ConfigError.
 */
export function loadResourcesFromText(text: string, fileLabel: string, options: LoadOptions = {}): LoadResult {
  return validateDocuments(parseDocuments(text, fileLabel), { ...options, fileLabel })
}

/** Why a file could not be read, in words (`no such file`), for one-line errors. */
export function describeReadError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'ENOENT') return 'no such file'
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied'
  if (code === 'EISDIR') return 'is a directory, expected a file'
  return (err as Error).message
}

function readError(path: string, err: unknown): ConfigError {
  return new ConfigError([`${path}: cannot read config file: ${describeReadError(err)}`])
}

/** A config file's text; a ConfigError naming the file when it cannot be read. */
export async function readConfigFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    throw readError(path, err)
  }
}

/** Reads and validates a config file; messages name it by `path` as given. Throws ConfigError. */
export async function loadResourcesFromFile(path: string, options: LoadOptions = {}): Promise<LoadResult> {
  return loadResourcesFromText(await readConfigFile(path), path, options)
}

/** Synchronous {@link loadResourcesFromFile}, for start-up paths that cannot await. */
export function loadResourcesFromFileSync(path: string, options: LoadOptions = {}): LoadResult {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw readError(path, err)
  }
  return loadResourcesFromText(text, path, options)
}
