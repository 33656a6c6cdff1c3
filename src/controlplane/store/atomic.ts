/**
 * Crash-safe file replacement: after a crash (kill -9, power loss) the target holds
 * either its previous or its new content in full, never a mix or a truncation.
 */
import { randomBytes } from 'node:crypto'
import { open, readdir, rename, unlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

const TEMP_MARKER = '.tmp-'

/**
 * Writes `data` to a temp file beside `target` (same directory, so rename is atomic),
 * fsyncs it, renames it over `target`, then fsyncs the directory so the rename itself
 * is durable. The file is created with `mode` (default 0600). On failure the temp file
 * is removed and `target` is untouched.
 */
export async function writeFileAtomic(target: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const temp = join(dirname(target), `${basename(target)}${TEMP_MARKER}${process.pid}-${randomBytes(4).toString('hex')}`)
  let renamed = false
  try {
    const file = await open(temp, 'wx', mode)
    try {
      await file.writeFile(data)
      await file.sync()
    } finally {
      await file.close()
    }
    await rename(temp, target)
    renamed = true
    await syncDirectory(dirname(target))
  } finally {
    if (!renamed) await unlink(temp).catch(() => undefined)
  }
}

async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/**
 * Removes temp files left beside `target` by a writer that crashed before its rename.
 * They are never read: the rename is the commit point, so their content never counted.
 * Only call this while no other writer of `target` is running.
 */
export async function removeStaleTempFiles(target: string): Promise<string[]> {
  const prefix = `${basename(target)}${TEMP_MARKER}`
  const removed: string[] = []
  for (const name of await readdir(dirname(target))) {
    if (!name.startsWith(prefix)) continue
    await unlink(join(dirname(target), name)).catch(() => undefined)
    removed.push(name)
  }
  return removed
}
