// Watches one config file for changes, the way editors and deployment tools actually change
// files: in place, by writing a temp file and renaming it over, by delete-and-create, or (a
// Kubernetes ConfigMap mount) by swapping a `..data` symlink in the same directory. Watching
// the file itself would lose track after the first rename, so the directory is watched and
// events are filtered by name, then debounced so one save triggers one reload.

import { watch, lstatSync, type FSWatcher } from 'node:fs'
import { basename, dirname, resolve } from 'node:path'

export interface FileWatcherOptions {
  /** Quiet period after the last event before `onChange` runs. */
  debounceMs?: number
  onChange: () => void
  /** Watching failed and stopped (the directory went away, too many watches, ...). */
  onError: (message: string) => void
}

export class FileWatcher {
  private watcher: FSWatcher | undefined
  private timer: NodeJS.Timeout | undefined
  private readonly debounceMs: number

  constructor(
    private readonly file: string,
    private readonly options: FileWatcherOptions,
  ) {
    this.debounceMs = options.debounceMs ?? 150
    const path = resolve(file)
    const name = basename(path)
    // A symlinked file changes when any link in the directory is swapped; accept every event
    // there (the reload skips content that did not change).
    let isSymlink = false
    try {
      isSymlink = lstatSync(path).isSymbolicLink()
    } catch {
      // A missing file is reported by the load itself.
    }

    this.watcher = watch(dirname(path), { persistent: true }, (_event, changed) => {
      if (isSymlink || changed === null || changed === name) this.schedule()
    })
    this.watcher.on('error', (err) => {
      this.close()
      this.options.onError(err.message)
    })
  }

  private schedule(): void {
    if (this.watcher === undefined) return
    clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.options.onChange()
    }, this.debounceMs)
  }

  close(): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.watcher?.close()
    this.watcher = undefined
  }
}
