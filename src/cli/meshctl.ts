// `meshctl`: the operator's CLI against mesh-control's Admin API. Results go to stdout,
// notes and failures to stderr as `meshctl: <line>`; exit 0 success, 1 failure at run
// time (refused, unreachable, a failed check), 2 bad usage.

import { packageVersion, quietGrpcLogs, reporter, runFromCommandLine as runEntry } from './common.js'
import { parseMeshctlArgs, USAGE } from './meshctl/args.js'

const COMMAND = 'meshctl'

function readStdin(): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ''
    process.stdin.setEncoding('utf8')
    process.stdin.on('data', (chunk: string) => (text += chunk))
    process.stdin.once('end', () => resolve(text))
    process.stdin.once('error', reject)
  })
}

/** Runs the command line and returns the exit status; never throws. */
export async function main(argv: readonly string[]): Promise<number> {
  const { say, fail } = reporter(COMMAND)
  try {
    const command = parseMeshctlArgs(argv)
    switch (command.kind) {
      case 'help':
        process.stdout.write(USAGE[command.topic])
        return 0
      case 'version':
        process.stdout.write(`meshctl ${packageVersion()}\n`)
        return 0
      default: {
        // Loaded here so --help and bad flags answer without loading gRPC.
        const { runRemoteCommand } = await import('./meshctl/commands.js')
        quietGrpcLogs(await import('@grpc/grpc-js'))
        return await runRemoteCommand(command, {
          stdout: (text) => process.stdout.write(text),
          note: say,
          readStdin,
        })
      }
    }
  } catch (err) {
    return fail(err)
  }
}

/** The `bin/meshctl.js` entry. */
export function runFromCommandLine(): void {
  runEntry(COMMAND, main)
}
