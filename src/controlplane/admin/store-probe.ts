/**
 * Proves the data dir is writable the way the store writes it: an atomic write (temp
 * file, fsync, rename, directory fsync) of a small probe file, then its removal. An
 * open handle or a writable mode bit proves nothing on a full or read-only filesystem.
 */
import { unlink } from 'node:fs/promises'
import { join } from 'node:path'
import type { StoreStatus } from '../../control/proto.js'
import { messageOf } from '../errors.js'
import { writeFileAtomic } from '../store/index.js'

export const PROBE_FILE = '.write-probe'

export async function probeFileStore(dataDir: string): Promise<StoreStatus> {
  const file = join(dataDir, PROBE_FILE)
  try {
    await writeFileAtomic(file, `${new Date().toISOString()}\n`)
    await unlink(file)
    return { type: 'file', writable: true, error: '', location: dataDir }
  } catch (err) {
    const error = err as NodeJS.ErrnoException
    const reason = error.code !== undefined ? `${error.code} (${messageOf(err).replace(/^\w+: /, '')})` : messageOf(err)
    return { type: 'file', writable: false, error: `${dataDir}: cannot write: ${reason}`, location: dataDir }
  }
}
