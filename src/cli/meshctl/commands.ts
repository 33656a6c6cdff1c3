// The meshctl commands that talk to mesh-control. Each returns its exit status and
// writes through `io`, so tests can run them in-process against a real server.

import { readFile } from 'node:fs/promises'

import { describeReadError, parseDocuments } from '../../config/index.js'
import { timestampToDate, type StatusResponse__Output } from '../../control/proto.js'
import { CommandError } from '../common.js'
import type { MeshctlCommand, OutputFormat } from './args.js'
import { AdminConnection } from './client.js'
import {
  applyView,
  decodeResource,
  describeKey,
  renderApplyLines,
  renderChecks,
  renderJson,
  renderResourceTables,
  renderStructured,
  renderYamlDocuments,
  statusChecks,
  statusView,
} from './format.js'

export interface CommandIo {
  stdout(text: string): void
  /** One line for stderr (notes, warnings); the CLI prefixes it with `meshctl: `. */
  note(line: string): void
  /** All of standard input, for `apply -f -`. */
  readStdin(): Promise<string>
}

type RemoteCommand = Exclude<MeshctlCommand, { kind: 'help' } | { kind: 'version' }>

/** Runs one command against mesh-control; resolves to the exit status, rejects with a CommandError. */
export async function runRemoteCommand(command: RemoteCommand, io: CommandIo): Promise<number> {
  // The client connects on its first call, so a local mistake (an unreadable or
  // malformed file) is reported without touching the network.
  const connection = new AdminConnection(command.options.controlPlane, command.options.timeoutMs)
  try {
    switch (command.kind) {
      case 'apply':
        return await apply(connection, await readApplyFile(command.file, io), command.options.output, io)
      case 'get':
        return await get(connection, command, io)
      case 'delete':
        return await remove(connection, command, io)
      case 'check':
        return await check(connection, command.options.output, io)
      case 'token-create':
        return await createToken(connection, command, io)
    }
  } finally {
    connection.close()
  }
}

// ---------------------------------------------------------------- apply

interface ApplyInput {
  source: string
  documents: { number: number; json: string }[]
}

/**
 * Reads and parses FILE locally with the project's loader (YAML or JSON, one or many
 * documents; a syntax error is a ConfigError naming file and line). Documents keep their
 * numbers in the file, so the server's messages match what the user sees in an editor.
 */
async function readApplyFile(file: string, io: CommandIo): Promise<ApplyInput> {
  const source = file === '-' ? 'stdin' : file
  let text: string
  try {
    text = file === '-' ? await io.readStdin() : await readFile(file, 'utf8')
  } catch (err) {
    throw new CommandError(`${source}: cannot read: ${describeReadError(err)}`)
  }
  const documents = parseDocuments(text, source)
  if (documents.length === 0) throw new CommandError(`${source}: no resources to apply`)
  return { source, documents: documents.map((doc) => ({ number: doc.number, json: JSON.stringify(doc.value) })) }
}

async function apply(connection: AdminConnection, input: ApplyInput, output: OutputFormat, io: CommandIo): Promise<number> {
  const response = await connection.apply(input)
  for (const warning of response.warnings) io.note(warning)
  // Every problem, one line each, and nothing stored: the server applies all or nothing.
  if (response.errors.length > 0) throw new CommandError(response.errors)
  io.stdout(output === 'table' ? renderApplyLines(response) : renderStructured(output, applyView(response)))
  return 0
}

// ---------------------------------------------------------------- get

async function get(connection: AdminConnection, command: Extract<MeshctlCommand, { kind: 'get' }>, io: CommandIo): Promise<number> {
  const all = command.resourceKind === 'all'
  const response = await connection.get({
    kind: all ? '' : command.resourceKind,
    namespace: command.namespace ?? '',
    name: command.name ?? '',
  })
  const resources = response.resources.map(decodeResource)
  const { output } = command.options
  if (output === 'json') {
    const only = resources[0]
    io.stdout(renderJson(command.name !== undefined && only !== undefined ? only.document : resources.map((r) => r.document)))
  } else if (output === 'yaml') {
    io.stdout(renderYamlDocuments(resources.map((r) => r.document)))
  } else if (resources.length === 0) {
    io.note(command.namespace === undefined ? 'no resources found' : `no resources found in namespace ${command.namespace}`)
  } else {
    io.stdout(renderResourceTables(resources, all))
  }
  return 0
}

// ---------------------------------------------------------------- delete

async function remove(connection: AdminConnection, command: Extract<MeshctlCommand, { kind: 'delete' }>, io: CommandIo): Promise<number> {
  const key = { kind: command.resourceKind, namespace: command.namespace, name: command.name }
  const response = await connection.delete(key)
  const { output } = command.options
  io.stdout(output === 'table' ? `${describeKey(key)} deleted\n` : renderStructured(output, { ...key, deleted: true, version: response.version }))
  return 0
}

// ---------------------------------------------------------------- check

async function check(connection: AdminConnection, output: OutputFormat, io: CommandIo): Promise<number> {
  let status: StatusResponse__Output
  try {
    status = await connection.status()
  } catch (err) {
    // In table mode the failed reachability check is itself the report.
    if (output !== 'table' || !(err instanceof CommandError)) throw err
    io.stdout(renderChecks([{ ok: false, name: 'control plane reachable', detail: err.message, notes: [] }]))
    return 1
  }
  const checks = statusChecks(status, connection.address)
  io.stdout(output === 'table' ? renderChecks(checks) : renderStructured(output, statusView(status)))
  return checks.every((c) => c.ok) ? 0 : 1
}

// ---------------------------------------------------------------- token create

async function createToken(
  connection: AdminConnection,
  command: Extract<MeshctlCommand, { kind: 'token-create' }>,
  io: CommandIo,
): Promise<number> {
  const { service, namespace } = command
  const response = await connection.createToken({ service, namespace })
  const { output } = command.options
  if (output !== 'table') {
    const createdAt = timestampToDate(response.createdAt)?.toISOString() ?? null
    io.stdout(renderStructured(output, { token: response.token, tokenId: response.tokenId, createdAt, service, namespace }))
    return 0
  }
  io.stdout(`${response.token}\n`)
  io.note(`join token ${response.tokenId} for ${namespace}/${service}: shown only this once (mesh-control keeps only its hash)`)
  const namespaceFlag = namespace === 'default' ? '' : ` --namespace ${namespace}`
  io.note(`use it as: mesh-proxy --control-plane ${connection.address} --name ${service}${namespaceFlag} --token TOKEN`)
  return 0
}
