/**
 * One process per data dir. Two mesh-control processes on one file store would each
 * keep their own in-memory state and overwrite each other's state file, silently
 * losing applies; the lock turns that mistake into a clear start-up error.
 *
 * The lock is a file holding the owner's pid, created with O_EXCL. A lock whose pid is
 * no longer running (the owner was killed -9) is stale and taken over, so a crash never
 * needs manual cleanup.
 */
import { open, readFile, unlink } from 'node:fs/promises'
import { join } from 'node:path'

export const LOCK_FILE = 'lock'

/**
 * Lock files this process holds. A lock naming our own pid that is not in here was left
 * by an earlier process that had the same pid (PID 1 in a restarted container).
 */
const heldHere = new Set<string>()

export class DataDirLock {
  private constructor(readonly file: string) {}

  /** Takes the lock, or returns the pid of the running process that holds it. */
  static async acquire(dataDir: string): Promise<DataDirLock | { heldBy: number }> {
    const file = join(dataDir, LOCK_FILE)
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const handle = await open(file, 'wx', 0o600)
        try {
          await handle.writeFile(`${process.pid}\n`)
        } finally {
          await handle.close()
        }
        heldHere.add(file)
        return new DataDirLock(file)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      }
      const owner = Number.parseInt(await readFile(file, 'utf8').catch(() => ''), 10)
      const held = owner === process.pid ? heldHere.has(file) : Number.isInteger(owner) && owner > 0 && isRunning(owner)
      if (held) return { heldBy: owner }
      // Stale (or half-written by a writer that died between create and write): take over.
      await unlink(file).catch(() => undefined)
    }
    throw new Error(`${file}: cannot take the lock (it keeps reappearing)`)
  }

  async release(): Promise<void> {
    if (!heldHere.delete(this.file)) return
    await unlink(this.file).catch(() => undefined)
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: it exists but belongs to another user, which still holds the lock.
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
