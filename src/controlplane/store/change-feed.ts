/**
 * Recent ChangeSets and the watchers that follow them. Retains a bounded number of
 * changes, like etcd before compaction: a watcher that falls further behind gets
 * `compacted` and relists.
 */
import { StoreError, type ChangeSet, type WatchListener } from './types.js'

export class ChangeFeed {
  private readonly history: ChangeSet[] = []
  private readonly listeners = new Set<WatchListener>()
  /** Changes above this revision are retained. */
  private retainedAfter: number

  constructor(
    /** The revision the store opened at: nothing before it is retained. */
    startRevision: number,
    private readonly maxRetained = 10_000,
  ) {
    this.retainedAfter = startRevision
  }

  watch(fromRevision: number, listener: WatchListener): () => void {
    if (!Number.isInteger(fromRevision) || fromRevision < 0) {
      throw new StoreError('invalid', `watch: revision must be a non-negative integer, got ${fromRevision}`)
    }
    if (fromRevision < this.retainedAfter) {
      throw new StoreError(
        'compacted',
        `watch: changes after revision ${fromRevision} are no longer retained (oldest is after ${this.retainedAfter}); list again and watch from its revision`,
      )
    }
    // Replay then subscribe in one synchronous step, so no change falls in between.
    for (const changes of this.history) {
      if (changes.revision > fromRevision) listener(changes)
    }
    let lastDelivered = Math.max(fromRevision, this.history.at(-1)?.revision ?? 0)
    const forward: WatchListener = (changes) => {
      if (changes.revision <= lastDelivered) return
      lastDelivered = changes.revision
      listener(changes)
    }
    this.listeners.add(forward)
    return () => {
      this.listeners.delete(forward)
    }
  }

  /** Records a committed ChangeSet and delivers it to every watcher, in commit order. */
  publish(changes: ChangeSet): void {
    this.history.push(changes)
    while (this.history.length > this.maxRetained) {
      this.retainedAfter = (this.history.shift() as ChangeSet).revision
    }
    for (const listener of [...this.listeners]) {
      if (!this.listeners.has(listener)) continue // unsubscribed by an earlier listener
      try {
        listener(changes)
      } catch (err) {
        // A listener bug must not undo a committed write or starve the other watchers;
        // drop that watcher and surface the error where uncaught errors are reported.
        this.listeners.delete(listener)
        queueMicrotask(() => {
          throw err
        })
      }
    }
  }

  close(): void {
    this.listeners.clear()
  }
}
